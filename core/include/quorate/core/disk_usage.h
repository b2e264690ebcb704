// The disk a tree takes, and a watch on a tree that a running process writes (a build step, skopeo).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <vector>

namespace quorate {

// The disk the files under `paths` take (st_blocks, each inode once: a sparse file counts what it holds), walked
// without following symlinks. Counting stops once past `stop_above`. Directories nested deeper than `max_depth`
// count as UINT64_MAX: what is below them would go uncounted. For a tree a process is still writing: an entry
// that vanishes or cannot be read is skipped, never an error.
uint64_t disk_usage(const std::vector<std::filesystem::path>& paths, uint64_t stop_above, int max_depth = 256);

// While a process runs: whether the disk `paths` take grew past `max_growth` since the watch was made. Looks at
// most every `interval` (and never more often than ten times the walk's own time), so it can be asked as often
// as run_process's `stop` is. Not thread-safe.
class DiskWatch {
 public:
  DiskWatch(std::vector<std::filesystem::path> paths, uint64_t max_growth,
            std::chrono::milliseconds interval = std::chrono::milliseconds(250));
  bool exceeded();
  uint64_t max_growth() const { return max_growth_; }

 private:
  std::vector<std::filesystem::path> paths_;
  uint64_t max_growth_;
  std::chrono::milliseconds interval_;
  uint64_t baseline_ = 0;
  std::chrono::steady_clock::time_point next_{};
};

}  // namespace quorate
