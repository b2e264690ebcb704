// disk_usage and DiskWatch: the disk a tree takes, walked relative to directory descriptors without following
// a symlink.
#include "quorate/core/disk_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

namespace quorate {
namespace {

struct Usage {
  uint64_t stop_above;
  int max_depth;
  uint64_t bytes = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  bool add(const struct stat& st) {
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.insert({st.st_dev, st.st_ino}).second) return true;
    bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    return bytes <= stop_above;
  }
};

// Adds what the directory open at `fd` (which it takes over) holds; false once past the bound.
bool usage_of_dir(int fd, int depth, Usage& u) {
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return true;
  }
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{d};
  while (struct dirent* ent = ::readdir(d)) {
    const char* name = ent->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
    struct stat st;
    if (::fstatat(::dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!u.add(st)) return false;
    if (!S_ISDIR(st.st_mode)) continue;
    if (depth + 1 > u.max_depth) {  // what lies deeper would go uncounted: count it as too much
      u.bytes = UINT64_MAX;
      return false;
    }
    int child = ::openat(::dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child >= 0 && !usage_of_dir(child, depth + 1, u)) return false;
  }
  return true;
}

}  // namespace

uint64_t disk_usage(const std::vector<std::filesystem::path>& paths, uint64_t stop_above, int max_depth) {
  Usage u{stop_above, max_depth};
  for (const auto& p : paths) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (!u.add(st)) break;
    if (!S_ISDIR(st.st_mode)) continue;
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && !usage_of_dir(fd, 0, u)) break;
  }
  return u.bytes;
}

DiskWatch::DiskWatch(std::vector<std::filesystem::path> paths, uint64_t max_growth, std::chrono::milliseconds interval)
    : paths_(std::move(paths)), max_growth_(max_growth), interval_(interval) {
  baseline_ = disk_usage(paths_, UINT64_MAX);
}

bool DiskWatch::exceeded() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) return false;
  const uint64_t bound = baseline_ > UINT64_MAX - max_growth_ ? UINT64_MAX : baseline_ + max_growth_;
  const bool over = disk_usage(paths_, bound) > bound;
  const auto took = std::chrono::steady_clock::now() - now;
  next_ = now + std::max<std::chrono::steady_clock::duration>(interval_, took * 10);
  return over;
}

}  // namespace quorate
