// libFuzzer target for the layer reader: arbitrary bytes as a layer file must yield a canonical layer or a
// Status error, never a crash, hang or unbounded allocation.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "quorate/core/sink.h"
#include "quorate/normalize/layer.h"

namespace {

// normalize_layer reads a path, so each input goes through one file per process.
const std::string& input_path() {
  static const std::string path = "/tmp/quorate-layer-fuzz." + std::to_string(::getpid());
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out(input_path(), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  quorate::normalize::LayerOptions options;
  options.source_date_epoch = 1700000000;
  options.compression = quorate::normalize::Compression::kNone;
  options.threads = 1;
  // Small limits keep a bomb from exhausting the fuzzer's memory; they are what is being tested.
  options.max_expanded_bytes = 64u << 20;
  options.max_entries = 20000;
  quorate::StringSink sink;
  auto result = quorate::normalize::normalize_layer(input_path(), sink, options);
  if (result.ok()) {
    // What was written is what the summary says.
    if (result->tar_size != sink.data().size()) __builtin_trap();
  }
  return 0;
}
