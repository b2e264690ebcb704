// Options of the canonical form: what normalize and the builder apply to every layer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace quorate::normalize {

// Identifies the canonical-form rules (docs/canonical-form.md). Every summary and attestation records it;
// any change of output bytes for the same input bumps it.
inline constexpr int kCanonicalFormVersion = 1;

enum class MtimeMode {
  kClamp,  // mtime = min(mtime, source_date_epoch)  (default)
  kSet,    // mtime = source_date_epoch
};

enum class Compression { kNone, kGzip, kZstd };

// "none", "gzip", "zstd"; and back (false when unknown).
const char* compression_name(Compression c);
bool parse_compression(const std::string& name, Compression& out);

struct LayerOptions {
  int64_t source_date_epoch = 0;
  MtimeMode mtime = MtimeMode::kClamp;
  // Keep numeric uid/gid and user/group names instead of resetting them to 0 and "".
  bool keep_owners = false;
  Compression compression = Compression::kGzip;
  // Compression level; -1 picks the default (gzip 6, zstd 3). Part of the output's identity.
  int level = -1;
  // Compression threads; 0 = gzip: one per core, zstd: one worker (see make_compressor). Never changes
  // output bytes.
  int threads = 0;
  // Refuse input whose expanded (uncompressed tar) size exceeds this: a decompression bomb guard.
  uint64_t max_expanded_bytes = uint64_t{64} << 30;
  // Refuse input with more entries than this.
  uint64_t max_entries = 10'000'000;
  // Compute LayerSummary::input_digest and input_size (normalize_layer): one more SHA-256 pass over the
  // input, overlapped with the write when the input is an uncompressed file. When false both stay empty/0.
  // normalize_image checks every layer whose digest its image names regardless.
  bool hash_input = true;
  // Where content spools go; empty = /tmp.
  std::filesystem::path temp_dir;
  // Called now and then with the number of input bytes read so far (for a progress display); may be empty.
  std::function<void(uint64_t)> progress;
};

}  // namespace quorate::normalize
