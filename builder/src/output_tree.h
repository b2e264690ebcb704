// Reading a run step's output directory ($OUT) as it is: symlinks are entries, never followed.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::builder {

struct OutputEntry {
  std::string path;         // relative to the output directory, '/'-separated
  struct stat st = {};      // lstat of the entry (a symlink is described, not its target)
  std::string link_target;  // symlinks: the link's text, as written (never resolved on the build host)
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

}  // namespace quorate::builder
