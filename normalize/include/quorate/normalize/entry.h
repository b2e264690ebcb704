// One tar entry's metadata, as the canonical writer sees it.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace quorate::normalize {

enum class EntryType { kFile, kDirectory, kSymlink, kHardlink, kCharDevice, kBlockDevice, kFifo };

struct Entry {
  // Relative path, no leading "./" or "/", no ".." component, no trailing "/" (also for directories).
  // Bytes are kept exactly: non-UTF-8 names are legal.
  std::string path;
  EntryType type = EntryType::kFile;
  uint32_t mode = 0644;  // permission bits plus setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string uname;
  std::string gname;
  int64_t mtime = 0;
  uint64_t size = 0;        // regular files only
  std::string link_target;  // symlinks: target as written; hardlinks: path of the linked entry
  uint32_t devmajor = 0;    // devices only
  uint32_t devminor = 0;
  std::map<std::string, std::string> xattrs;  // name -> raw value, sorted by name
};

}  // namespace quorate::normalize
