// Names of options, the range of SOURCE_DATE_EPOCH, and the count of what an image's layers expand to.
#include "quorate/normalize/options.h"

#include <cstdint>

namespace quorate::normalize {

Status check_source_date_epoch(int64_t epoch) {
  if (epoch >= 0 && epoch <= kMaxSourceDateEpoch) return Status();
  return Status::bad_input("SOURCE_DATE_EPOCH " + std::to_string(epoch) + " is outside 0.." +
                           std::to_string(kMaxSourceDateEpoch) +
                           " (1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z, what an RFC 3339 date can hold)");
}

Status check_layer_count(size_t layers, const std::string& what) {
  if (layers <= kMaxImageLayers) return Status();
  return Status::bad_input(what + " lists " + std::to_string(layers) + " layers; an image may have at most " +
                           std::to_string(kMaxImageLayers));
}

Status ExpandedTotal::add(uint64_t bytes, const std::string& where) {
  counted_ = bytes > UINT64_MAX - counted_ ? UINT64_MAX : counted_ + bytes;  // a limit near 2^64 cannot wrap it
  if (counted_ <= limit_) return Status();
  return Status::bad_input(where + ": " + what_ + " expand to more than " + std::to_string(limit_) + " bytes together");
}

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "none";
}

bool parse_compression(const std::string& name, Compression& out) {
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    if (name == compression_name(c)) {
      out = c;
      return true;
    }
  }
  return false;
}

}  // namespace quorate::normalize
