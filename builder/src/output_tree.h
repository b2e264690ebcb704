// Reading a run step's output directory ($OUT) as it is: symlinks are entries, never followed.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/normalize/layer.h"

namespace quorate::builder {

struct OutputEntry {
  std::string path;         // relative to the output directory, '/'-separated
  struct stat st = {};      // lstat of the entry (a symlink is described, not its target)
  std::string link_target;  // symlinks: the link's text, as written (never resolved on the build host)
  bool opaque = false;      // directories: overlayfs's trusted.overlay.opaque is "y" (an upper dir's mark)
};

struct OutputLimits {
  uint64_t max_bytes = 0;  // sum of the sizes of regular files (a hardlinked file counts once)
  uint64_t max_entries = 1'000'000;
  int max_depth = 256;  // directories nested deeper than this are refused
};

// Walks `dir` with openat(O_NOFOLLOW) relative to directory descriptors and fstatat(AT_SYMLINK_NOFOLLOW), so
// no symlink the step left behind is followed to the host (issue 11, item 4). Returns every entry below
// `dir`, sorted by path bytewise, and adds the regular files' bytes to `bytes`. bad_input naming the path when
// the output exceeds a limit ("output is larger than N bytes"), io when the directory cannot be read.
Result<std::vector<OutputEntry>> read_output_tree(const std::filesystem::path& dir, const OutputLimits& limits,
                                                  uint64_t& bytes);

// The first layer path written for each (device, inode) of a hardlinked regular file.
using HardlinkPaths = std::map<std::pair<dev_t, ino_t>, std::string>;

// Adds `o` to the layer as `e` (whose path, owner, mtime and mode the caller has set): a directory, a symlink
// (its text, mode 0777), a regular file read from `file` (a later name of an inode already written becomes a
// hardlink to the first), or a fifo. Returns false, adding nothing, for devices and sockets: the caller
// decides whether they may be in its layer. The path leads to what was lstat-ed because the caller's tree is
// no longer written to (the step's processes are gone) and read_output_tree checked every directory on the way.
Result<bool> add_output_entry(normalize::CanonicalLayerWriter& writer, normalize::Entry e, const OutputEntry& o,
                              const std::filesystem::path& file, HardlinkPaths& links);

}  // namespace quorate::builder
