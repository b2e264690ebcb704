// The members of an image given as a directory or as a tar (docker-archive, OCI layout tar), by archive path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "quorate/core/status.h"
#include "quorate/core/temporaries.h"

struct archive;

namespace quorate::normalize {

// A tar is extracted once into a fresh private directory (removed with the object): only directories and
// regular files are created, each at its checked path (absolute and ".." paths refused), and links are
// recorded, never created, so no member can name or write a file outside that directory. Symlinks leading
// out of the archive are refused; the total size of the members, their count (kMaxArchiveMembers), the length
// of their names and link targets (kMaxMemberName: every name and link is remembered) and where each one's
// data lies (within its declared size: a sparse map cannot place it further) are bounded.
class ImageFiles {
 public:
  static constexpr uint64_t kMaxArchiveMembers = 10'000;
  // Longer than any name an image archive holds ("blobs/sha256/<64 hex>", "<64 hex>/layer.tar"), and than a
  // path a file system takes.
  static constexpr size_t kMaxMemberName = 4096;
  static Result<std::unique_ptr<ImageFiles>> open_dir(const std::filesystem::path& dir);
  // bad_input naming the tar and the member for a hostile path, a link out of the archive, corrupt data, or
  // more than `max_bytes` of content. `temp_dir` empty: /tmp.
  static Result<std::unique_ptr<ImageFiles>> extract(const std::filesystem::path& tar,
                                                     const std::filesystem::path& temp_dir, uint64_t max_bytes);
  ~ImageFiles();
  ImageFiles(const ImageFiles&) = delete;
  ImageFiles& operator=(const ImageFiles&) = delete;

  // The regular file holding member `name` (hardlinks and symlinks of an extracted tar followed within it);
  // bad_input "<what>: <name> is missing from the image" when there is none, for a hostile name, and naming
  // the symlink when a directory's member is one or lies under one (never followed: it could lead anywhere).
  Result<std::filesystem::path> path_of(const std::string& name, const std::string& what) const;

 private:
  ImageFiles() = default;
  Status extract_all(const std::filesystem::path& tar, uint64_t max_bytes);
  Status make_dirs(const std::string& name);
  Status write_member(struct archive* a, const std::string& name, uint64_t declared, const std::filesystem::path& tar);

  std::filesystem::path root_;
  std::optional<TempDir> temp_;               // the private directory of an extracted tar
  std::map<std::string, std::string> links_;  // member -> the member it leads to
};

}  // namespace quorate::normalize
