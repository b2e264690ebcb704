// read_output_tree: a directory walk that never follows a symlink and stops at the first exceeded limit.
#include "output_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

namespace quorate::builder {
namespace {

struct Walk {
  const OutputLimits& limits;
  uint64_t& bytes;
  std::vector<OutputEntry> entries;
  std::set<std::pair<dev_t, ino_t>> counted;  // regular files already counted (hardlinks count once)
};

std::string join(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

Result<std::string> read_link(int dir_fd, const char* name, const std::string& path, off_t size) {
  std::string target(static_cast<size_t>(size > 0 ? size : 255) + 1, '\0');
  while (true) {
    ssize_t n = ::readlinkat(dir_fd, name, target.data(), target.size());
    if (n < 0) return Status::from_errno("readlink " + path, errno);
    if (static_cast<size_t>(n) < target.size()) {
      target.resize(static_cast<size_t>(n));
      return target;
    }
    if (target.size() > 65536) return Status::bad_input("symlink " + path + " has a target longer than 64 KiB");
    target.resize(target.size() * 2);
  }
}

Status count(Walk& w, const OutputEntry& e) {
  if (!S_ISREG(e.st.st_mode) || !w.counted.insert({e.st.st_dev, e.st.st_ino}).second) return Status();
  w.bytes += static_cast<uint64_t>(e.st.st_size);
  if (w.bytes > w.limits.max_bytes) {
    return Status::bad_input("output is larger than " + std::to_string(w.limits.max_bytes) + " bytes (at " + e.path +
                             ", " + std::to_string(e.st.st_size) + " bytes)");
  }
  return Status();
}

// Reads every name of the directory open at `fd` (which it takes over), then visits them.
Status walk_dir(int fd, const std::string& prefix, int depth, Walk& w) {
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Status::from_errno("open output directory " + prefix, errno);
  }
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{d};
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
    errno = 0;
  }
  if (errno != 0) return Status::from_errno("read output directory " + prefix, errno);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    OutputEntry e;
    e.path = join(prefix, name);
    if (::fstatat(::dirfd(d), name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::from_errno("lstat " + e.path, errno);
    }
    if (w.entries.size() >= w.limits.max_entries) {
      return Status::bad_input("output has more than " + std::to_string(w.limits.max_entries) + " entries (at " +
                               e.path + ")");
    }
    if (S_ISLNK(e.st.st_mode)) e.link_target = QR_TRY(read_link(::dirfd(d), name.c_str(), e.path, e.st.st_size));
    QR_RETURN_IF_ERROR(count(w, e));
    const bool is_dir = S_ISDIR(e.st.st_mode);
    std::string path = e.path;
    w.entries.push_back(std::move(e));
    if (!is_dir) continue;
    if (depth + 1 > w.limits.max_depth) {
      return Status::bad_input("output nests directories deeper than " + std::to_string(w.limits.max_depth) +
                               " levels (at " + path + ")");
    }
    int child = ::openat(::dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0) return Status::from_errno("open output directory " + path, errno);
    // Read through the descriptor: a path would fail past PATH_MAX, and then only on hosts whose work
    // directory is long enough (two nodes would disagree on the same step).
    char value[4] = {};
    ssize_t n = ::fgetxattr(child, "trusted.overlay.opaque", value, sizeof value);
    if (n < 0 && errno != ENODATA && errno != ENOTSUP && errno != ERANGE) {
      const int err = errno;
      ::close(child);
      return Status::from_errno("read the extended attributes of " + path, err);
    }
    w.entries.back().opaque = n == 1 && value[0] == 'y';
    QR_RETURN_IF_ERROR(walk_dir(child, path, depth + 1, w));
  }
  return Status();
}

}  // namespace

Result<std::vector<OutputEntry>> read_output_tree(const std::filesystem::path& dir, const OutputLimits& limits,
                                                  uint64_t& bytes) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open output directory " + dir.string(), errno);
  Walk w{limits, bytes, {}, {}};
  QR_RETURN_IF_ERROR(walk_dir(fd, "", 0, w));
  std::sort(w.entries.begin(), w.entries.end(),
            [](const OutputEntry& a, const OutputEntry& b) { return a.path < b.path; });
  return std::move(w.entries);
}

Result<bool> add_output_entry(normalize::CanonicalLayerWriter& writer, normalize::Entry e, const OutputEntry& o,
                              const std::filesystem::path& file, HardlinkPaths& links) {
  using normalize::EntryType;
  const struct stat& st = o.st;
  if (S_ISDIR(st.st_mode)) {
    e.type = EntryType::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    e.type = EntryType::kSymlink;
    e.mode = 0777;
    e.link_target = o.link_target;
  } else if (S_ISREG(st.st_mode)) {
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (st.st_nlink > 1 && links.count(key)) {
      e.type = EntryType::kHardlink;
      e.link_target = links[key];
    } else {
      if (st.st_nlink > 1) links[key] = e.path;
      QR_RETURN_IF_ERROR(writer.add_file(std::move(e), file));
      return true;
    }
  } else if (S_ISFIFO(st.st_mode)) {
    e.type = EntryType::kFifo;
  } else {
    return false;
  }
  QR_RETURN_IF_ERROR(writer.add(std::move(e)));
  return true;
}

}  // namespace quorate::builder
