// Names of options.
#include "quorate/normalize/options.h"

namespace quorate::normalize {

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
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
