// Canonical tar layers: normalize an existing layer, or write one from entries (the builder's path).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "quorate/core/sink.h"
#include "quorate/core/status.h"
#include "quorate/normalize/entry.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize {

// What a layer became, and what had to change to get there.
struct LayerSummary {
  std::string digest;      // sha256 of the (compressed) blob written to the sink
  uint64_t size = 0;       // bytes written to the sink
  std::string diff_id;     // sha256 of the uncompressed canonical tar
  uint64_t tar_size = 0;   // bytes of the uncompressed canonical tar
  std::string media_type;  // layer_media_type(compression)
  uint64_t entries = 0;    // entries written
  // Repairs and changes, counted per entry.
  uint64_t reordered = 0;            // entries not already in canonical order on input
  uint64_t times_clamped = 0;        // mtimes changed
  uint64_t owners_reset = 0;         // uid/gid/uname/gname changed
  uint64_t pax_records_dropped = 0;  // atime, ctime, inode/device numbers and other dropped records
  uint64_t duplicates_dropped = 0;   // earlier entries replaced by a later one with the same path
  uint64_t paths_cleaned = 0;        // "./" prefixes, "//" and "/./" removed; the root entry "." dropped
  // Input side (normalize_layer only).
  std::string input_digest;  // sha256 of the input file's bytes as given
  uint64_t input_size = 0;
};

// Reads a layer from `input` — a tar, optionally gzip/zstd/xz/bzip2-compressed, detected by content — and
// writes its canonical form to `out` (compressed per options). Memory stays bounded: metadata is held per
// entry, content is spooled to an unlinked temporary file.
// Errors: bad_input naming the entry and what is wrong (absolute path, ".." component, a non-directory named
// "." or "", a path under a non-directory, a hardlink to a missing or escaping path, truncated or corrupt
// data, a gzip CRC or length mismatch, expanded size over the limit) or the epoch (check_source_date_epoch),
// not_found/io for the file. Nothing is written to `out` before the input has been read completely and found
// valid. `total`, when not null, counts every byte counted against options.max_expanded_bytes too, as it is
// read, and its error (passing its limit) stops the read (normalize_image's bound on an image's layers).
Result<LayerSummary> normalize_layer(const std::filesystem::path& input, Sink& out, const LayerOptions& options,
                                     ExpandedTotal* total = nullptr);

// Builds a canonical layer from entries added in any order; the last entry added for a path wins.
// Not thread-safe.
class CanonicalLayerWriter {
 public:
  explicit CanonicalLayerWriter(LayerOptions options);
  ~CanonicalLayerWriter();
  CanonicalLayerWriter(const CanonicalLayerWriter&) = delete;
  CanonicalLayerWriter& operator=(const CanonicalLayerWriter&) = delete;

  // A regular file whose content is `bytes` (entry.size is set from it).
  Status add_bytes(Entry entry, std::string_view bytes);
  // A regular file whose content is read from `source` at write() time (entry.size is set from it now).
  Status add_file(Entry entry, const std::filesystem::path& source);
  // Anything but a regular file with content: directories, symlinks, hardlinks, devices, fifos.
  Status add(Entry entry);

  // Checks paths and links, sorts, and writes the canonical (compressed) tar to `out`.
  // bad_input naming the entry when a path is hostile or a hardlink target is missing.
  Result<LayerSummary> write(Sink& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Checks and cleans a tar path: strips a leading "./" and trailing "/", refuses absolute paths, ".."
// components, empty names and NUL bytes. Returns the canonical path or bad_input naming the path.
Result<std::string> canonical_path(std::string_view raw);

}  // namespace quorate::normalize
