// quorate diff: why two images differ — manifest and config fields, then layer by layer, file by file.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::audit {

// One field that differs: where it is ("config.created", "mode", "content"), and both values as text.
struct FieldDiff {
  std::string field;
  std::string a;
  std::string b;
};

// A path that differs between two aligned layers.
struct FileChange {
  enum class Kind { kAdded, kRemoved, kChanged };
  std::string path;
  Kind kind = Kind::kChanged;
  std::vector<FieldDiff> fields;  // kChanged: what differs (content, size, mode, owner, mtime, link, xattrs, type)
};

struct LayerDiff {
  size_t index = 0;         // position in the manifest
  std::string a_digest;     // empty when the layer exists only on the other side
  std::string b_digest;
  std::vector<FileChange> changes;  // sorted by path
};

struct ImageDiff {
  std::vector<FieldDiff> manifest;  // manifest fields (layer descriptors are compared through LayerDiff)
  std::vector<FieldDiff> config;    // config fields, flattened to JSON pointers
  std::vector<LayerDiff> layers;    // only layers with differences
  bool identical() const { return manifest.empty() && config.empty() && layers.empty(); }
};

struct DiffOptions {
  // Field names to hide: "mtime", "owner", "mode", "xattrs", "content", "link", and "created" for config
  // and history times. Unknown names are a usage error (see check_ignore).
  std::set<std::string> ignore;
  uint64_t max_expanded_bytes = uint64_t{64} << 30;
};

// usage error naming the first unknown field in `ignore`.
Status check_ignore(const std::set<std::string>& ignore);

// Compares two layers (any compression) entry by entry, aligned by path; memory grows with the number of
// entries, not their size. Content is compared by SHA-256.
Result<LayerDiff> diff_layers(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options);

// Compares two images given as OCI image layouts (directories, as `quorate build` and `quorate normalize`
// write them): manifest fields, config fields (flattened to JSON pointers), then each pair of layers whose
// digests differ, with diff_layers. Layers are aligned by position; a layer present on one side only lists
// all its paths as added or removed. bad_input for a layout that is not one, or a blob that does not match
// its digest; not_found for a missing directory or blob.
Result<ImageDiff> diff_images(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options);

// JSON and human renderings of a diff.
nlohmann::json to_json(const ImageDiff& diff);
std::string to_text(const ImageDiff& diff);

}  // namespace quorate::audit
