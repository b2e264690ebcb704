// Options of the canonical form: what normalize and the builder apply to every layer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>

#include "quorate/core/status.h"
#include "quorate/core/time.h"

namespace quorate::normalize {

// Identifies the canonical-form rules (docs/canonical-form.md). Every summary and attestation records it;
// any change of output bytes for the same input bumps it.
inline constexpr int kCanonicalFormVersion = 1;

// The largest SOURCE_DATE_EPOCH: 9999-12-31T23:59:59Z, the last second an RFC 3339 date (four-digit year) can
// write, as the image config's `created` must.
inline constexpr int64_t kMaxSourceDateEpoch = kLastRfc3339Second;

// ok for 0 <= epoch <= kMaxSourceDateEpoch; bad_input naming the epoch otherwise. The one check of the epoch:
// normalize_layer, normalize_image and CanonicalLayerWriter apply it before anything else.
Status check_source_date_epoch(int64_t epoch);

// The default limit on a layer's expanded (uncompressed tar) size: 8 GiB. Expanded bytes are spooled to
// temp_dir, so this also bounds the disk a decompression bomb can take there.
inline constexpr uint64_t kDefaultMaxExpandedBytes = uint64_t{8} << 30;
// The default limit on a layer's entries.
inline constexpr uint64_t kDefaultMaxEntries = 10'000'000;

// The most layers one image may list (Docker's overlay2 refuses more than 125, so no runnable image has more):
// every limit above is a layer's, and one small layer listed a hundred thousand times multiplied them.
inline constexpr size_t kMaxImageLayers = 128;
// bad_input "WHAT lists N layers; an image may have at most 128" past kMaxImageLayers.
Status check_layer_count(size_t layers, const std::string& what);

// The default limit on what the distinct layers of one image expand to together (normalize_image; the image
// store's unpack takes the same): 32 GiB. Each layer may reach the per-layer limit and an image may list 128
// distinct ones: 128 small zstd bombs were 128 times the per-layer limit in time and spool. A large real
// builder image (CUDA, a full toolchain) is 10 to 20 GB. The members of an image tar (its blobs) are bounded
// by it too.
inline constexpr uint64_t kDefaultMaxImageExpandedBytes = uint64_t{32} << 30;

// The expanded bytes of several layers read one after another (one image's, or the two images' of a diff),
// counted as each layer's reader counts its own against its per-layer limit, and the most they may be
// together. Not thread-safe: one reader adds to it at a time.
class ExpandedTotal {
 public:
  // `what` names the layers in the error ("the image's layers").
  ExpandedTotal(uint64_t limit, std::string what) : limit_(limit), what_(std::move(what)) {}
  // Counts `bytes` more; bad_input "WHERE: WHAT expand to more than LIMIT bytes together" once the count
  // passes the limit.
  Status add(uint64_t bytes, const std::string& where);

 private:
  uint64_t limit_;
  std::string what_;
  uint64_t counted_ = 0;
};

enum class MtimeMode {
  kClamp,  // mtime = min(mtime, source_date_epoch)  (default)
  kSet,    // mtime = source_date_epoch
};

enum class Compression { kNone, kGzip, kZstd };

// "none", "gzip", "zstd"; and back (false when unknown).
const char* compression_name(Compression c);
bool parse_compression(const std::string& name, Compression& out);

struct LayerOptions {
  int64_t source_date_epoch = 0;  // 0 ..= kMaxSourceDateEpoch (check_source_date_epoch)
  MtimeMode mtime = MtimeMode::kClamp;
  // Keep numeric uid/gid and user/group names instead of resetting them to 0 and "".
  bool keep_owners = false;
  Compression compression = Compression::kGzip;
  // Compression level; -1 picks the default (gzip 6, zstd 3). Part of the output's identity.
  int level = -1;
  // Compression threads; 0 = gzip: one per core, zstd: one worker (see make_compressor). Never changes
  // output bytes.
  int threads = 0;
  // Refuse input whose expanded (uncompressed tar) size exceeds this: a decompression bomb guard. Content
  // is spooled to temp_dir, so temp_dir needs up to this much free space.
  uint64_t max_expanded_bytes = kDefaultMaxExpandedBytes;
  // Refuse input with more entries than this.
  uint64_t max_entries = kDefaultMaxEntries;
  // Compute LayerSummary::input_digest and input_size (normalize_layer): one more SHA-256 pass over the
  // input, overlapped with the write when the input is an uncompressed file. When false both stay empty/0.
  // normalize_image checks every layer whose digest its image names regardless.
  bool hash_input = true;
  // Where content spools go; empty = /tmp. The library never reads $TMPDIR: the caller passes it (the CLI
  // does).
  std::filesystem::path temp_dir;
  // Called now and then with the number of input bytes read so far (for a progress display); may be empty.
  std::function<void(uint64_t)> progress;
  // Asked before each MiB of tar reaches the compressor (or the output) and before each piece of compressed
  // output leaves it, when set: a failure stops the write with it (a build's deadline). Never changes output
  // bytes.
  std::function<Status()> keep_going;
};

}  // namespace quorate::normalize
