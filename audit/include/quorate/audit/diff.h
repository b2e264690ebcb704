// quorate diff: why two images differ — manifest and config fields, then layer by layer, file by file.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <string_view>
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
  std::string deep;  // with DiffOptions::diffoscope and changed content of a regular file: its report; else empty
};

// What one diff lists at most, its manifest and config fields and every layer's changes together: the
// differences and the bytes of their paths, field names and values. Past either bound the rest are counted
// (the `omitted` counts), not kept: a 76 KB image listing a layer of long paths 16 times held 8.6 GB, and a
// 15 MB config of one long key over a long array asked for terabytes. Real images differ by far less.
inline constexpr size_t kMaxListedDifferences = 1'000'000;
inline constexpr uint64_t kMaxListedBytes = uint64_t{128} << 20;

struct LayerDiff {
  size_t index = 0;      // position in the manifest
  std::string a_digest;  // empty when the layer exists only on the other side
  std::string b_digest;
  std::vector<FileChange> changes;  // sorted by path
  size_t omitted = 0;               // changes past the listing bounds, counted but not in `changes`
};

struct ImageDiff {
  std::vector<FieldDiff> manifest;  // manifest fields (layer descriptors are compared through LayerDiff)
  std::vector<FieldDiff> config;    // config fields, as JSON pointers, sorted
  std::vector<LayerDiff> layers;    // only layers with differences
  size_t manifest_omitted = 0;      // fields past the listing bounds, counted but not listed
  size_t config_omitted = 0;
  bool identical() const {
    return manifest.empty() && config.empty() && layers.empty() && manifest_omitted == 0 && config_omitted == 0;
  }
};

struct DiffOptions {
  // Field names to hide: "mtime", "owner", "mode", "xattrs", "content", "link", and "created" for config
  // and history times. Unknown names are a usage error (see check_ignore).
  std::set<std::string> ignore;
  // The most content one layer may expand to, and one tar input or --deep file pair may take on disk.
  uint64_t max_expanded_bytes = uint64_t{64} << 30;
  // The most content the layers diff_images reads may expand to together, both images' (a pair of layers
  // listed again is read once), counted as they are read; never below max_expanded_bytes (the larger of the
  // two applies). 64 GiB: two images of 32 GiB, the most quorate normalize and the image store take from one.
  uint64_t max_total_expanded_bytes = uint64_t{64} << 30;
  // Where tar inputs are extracted and --deep's file pairs written, each in a fresh directory removed before
  // returning; empty = /tmp.
  std::filesystem::path temp_dir;
  // When set, this program is run as `diffoscope --text - a/NAME b/NAME` on the two versions of every regular
  // file whose content changed, and its report kept in FileChange::deep. diffoscope exits 1 for "differ", so
  // any exit status is a report; only failing to start it is an error.
  std::filesystem::path diffoscope;
  // "os/arch[/variant]": the image to take from an OCI layout that holds several; empty when each holds one.
  std::string platform;
  std::chrono::seconds deep_timeout{60};  // a run still going then is killed; the report says so
  size_t deep_max_lines = 200;            // longer reports are cut, with a closing line saying so
  // Progress lines ("layer 2/5: reading", "diffoscope 3/12: usr/bin/hello"); may be empty.
  std::function<void(const std::string&)> progress;
};

// The diffoscope executable in `search_path` (directories separated by ':', as in $PATH; empty entries
// skipped); usage error saying diffoscope is not installed when no directory holds one.
Result<std::filesystem::path> find_diffoscope(std::string_view search_path);

// usage error naming the first unknown field in `ignore`.
Status check_ignore(const std::set<std::string>& ignore);

// Compares two layers (any compression) entry by entry, aligned by path; memory grows with the number of
// entries, not their size, and the changes kept are bounded (kMaxListedDifferences). Content is compared by SHA-256;
// with options.diffoscope, changed files are explained by it (see DiffOptions).
Result<LayerDiff> diff_layers(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options);

// Compares two images, each an OCI image layout directory, an OCI layout tar (oci-archive) or a
// docker-archive (`docker save`, any compression), told apart by content: manifest fields, config fields
// (each differing leaf — a scalar, an empty array or object — by its JSON pointer), then each pair of layers whose
// digests differ, with diff_layers. Nothing is normalized: the diff is of the bytes as they are. A docker-archive's
// manifest is its manifest.json entry, its layer digests those in the member names, else its config's diff_ids. Layers
// are aligned by position; a layer present on one side only lists all its paths as added or removed. A tar input is
// extracted into a fresh directory under temp_dir (directories and regular files only; links become hard links to the
// member they lead to) and removed before returning. Errors name the input: bad_input for anything else than the three
// formats, a member with an absolute or ".." path, a link leading out of the archive, more than max_expanded_bytes of
// members, or a JSON blob or a layer that does not match its digest (every layer file is hashed first, once however
// often it is listed), or layers compared expanding to more than max_total_expanded_bytes together (named at the
// image, layer and entry where the count passed it); not_found for a missing input, blob or member; unsupported
// for a docker-archive of several images.
Result<ImageDiff> diff_images(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options);

// JSON and human renderings of a diff. The JSON holds the bytes as they are; the text masks every path,
// field and value with mask_control (core/display.h), since they come from the images.
nlohmann::json to_json(const ImageDiff& diff);
std::string to_text(const ImageDiff& diff);

}  // namespace quorate::audit
