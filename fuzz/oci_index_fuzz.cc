// libFuzzer target for the OCI index walk: arbitrary index.json and blobs as an OCI layout directory must
// give a canonical image or a Status error — never a crash, a hang or unbounded memory (an index flood once
// ended in bad_alloc).
//
// Input: chunks separated by "\n@@\n". Chunk 0 is index.json, chunk N >= 1 is a blob stored under its own
// digest. "$N" (one digit) in a chunk stands for "sha256:<hex>" of blob N; a blob may only name blobs after
// it (digests are computed from the last blob back), so the fuzzer can build real graphs of nested indexes,
// manifests, configs and layers without having to find SHA-256 preimages.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/sha256.h"
#include "quorate/normalize/image.h"

namespace {
namespace fs = std::filesystem;

constexpr std::string_view kSeparator = "\n@@\n";

std::vector<std::string> split(std::string_view data) {
  std::vector<std::string> out;
  for (;;) {
    size_t at = data.find(kSeparator);
    out.emplace_back(data.substr(0, at));
    if (at == std::string_view::npos || out.size() == 10) return out;
    data.remove_prefix(at + kSeparator.size());
  }
}

// Replaces "$N" for N > `self` by the digest of blob N.
std::string substitute(const std::string& chunk, const std::vector<std::string>& digests, size_t self) {
  std::string out;
  for (size_t i = 0; i < chunk.size(); ++i) {
    size_t n = i + 1 < chunk.size() ? static_cast<size_t>(chunk[i + 1] - '0') : 0;
    if (chunk[i] == '$' && n > self && n < digests.size()) {
      out += digests[n];
      ++i;
    } else {
      out += chunk[i];
    }
  }
  return out;
}

void spit(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path root = "/tmp/quorate-oci-index-fuzz." + std::to_string(::getpid());
  const fs::path layout = root / "in", out = root / "out";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(layout / "blobs/sha256");
  auto chunks = split(std::string_view(reinterpret_cast<const char*>(data), size));
  std::vector<std::string> digests(chunks.size());
  for (size_t i = chunks.size(); i-- > 1;) {
    chunks[i] = substitute(chunks[i], digests, i);
    digests[i] = quorate::sha256_digest(chunks[i]);
    spit(layout / "blobs/sha256" / digests[i].substr(7), chunks[i]);
  }
  spit(layout / "index.json", substitute(chunks[0], digests, 0));
  spit(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  quorate::normalize::LayerOptions options;
  options.source_date_epoch = 1700000000;
  options.compression = quorate::normalize::Compression::kNone;
  options.threads = 1;
  options.max_expanded_bytes = 64u << 20;  // small limits keep a bomb from exhausting the fuzzer's memory
  options.max_entries = 20000;
  options.temp_dir = root;
  auto result = quorate::normalize::normalize_image(layout, out, options);
  if (result.ok() && !fs::exists(out / "index.json")) __builtin_trap();  // success means a layout was written
  fs::remove_all(root, ec);
  return 0;
}
