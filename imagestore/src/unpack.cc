// unpack_layers: a root file system from layer tars. libarchive reads the tars; every file is written through
// the descriptor of the directory it belongs in, each directory opened from the tree's root one name at a
// time with O_NOFOLLOW, so nothing is written, removed or chmod-ed through a symlink, and no host path is ever
// joined to a member's path (docs/decisions.md, "A builder image is unpacked through descriptors").
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_set>
#include <vector>

#include "quorate/normalize/layer.h"
#include "quorate/normalize/tar_reader.h"
#include "store_internal.h"

namespace quorate::imagestore::internal {
namespace fs = std::filesystem;
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}
std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}
std::string join(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

// A directory's mode and time, set when every layer is written: a read-only directory must stay writable
// for the layers above it.
struct DirMeta {
  uint32_t mode = 0755;
  struct timespec mtime {};
};

// What the directories' paths, held until every layer is written, may weigh together: 2.8 MB of gzip (75,000
// directories of 3.8 KB paths) held 316 MB, and 10,000,000 such entries a layer would hold 40 GB. A large
// real image holds a few MB (100,000 directories of 100 bytes: 10 MB).
constexpr uint64_t kMaxDirPathBytes = uint64_t{64} << 20;

// What an image's layers may expand to together (declared sizes). Each layer may reach 8 GiB and an image may
// list 128: 1 TiB of files from a few MB of zstd. A large real builder image (CUDA, a full toolchain) is
// 10 to 20 GB. One bound with `quorate normalize`'s default for an image, which counts names too.
constexpr uint64_t kMaxImageExpandedBytes = normalize::kDefaultMaxImageExpandedBytes;

class Tree {
 public:
  explicit Tree(Fd root) : root_(std::move(root)) {}

  // The directory `rel` (canonical; "" is the root), opened one name at a time without following links.
  // Absent components are made (mode 0755, time 0, unless a member says otherwise) when `create`; otherwise
  // an absent one gives an Fd that is not ok(). A symlink or a non-directory on the way is bad_input.
  Result<Fd> open_dir(const std::string& rel, bool create, const std::string& what) {
    Fd cur(::openat(root_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cur.ok()) return Status::from_errno("open the root of the tree", errno);
    size_t pos = 0;
    while (pos < rel.size()) {
      size_t slash = std::min(rel.find('/', pos), rel.size());
      const std::string name = rel.substr(pos, slash - pos);
      const std::string prefix = rel.substr(0, slash);
      pos = slash + 1;
      Fd next(::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.ok() && errno == ENOENT) {
        if (!create) return Fd();
        if (::mkdirat(cur.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
          const int e = errno;
          return Status::bad_input(what + ": create directory " + prefix + ": " + std::strerror(e));
        }
        next = Fd(::openat(cur.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (next.ok()) {
          QR_RETURN_IF_ERROR(set_dir(prefix, DirMeta{}, false, what));
          written(cur.get(), name);
        }
      }
      const int e = errno;
      if (!next.ok() && (e == ELOOP || e == ENOTDIR)) {
        return Status::bad_input(what + " lies behind a symlink or a file (" + prefix + "): nothing is written there");
      }
      if (!next.ok()) return Status::bad_input(what + ": open directory " + prefix + ": " + std::strerror(e));
      cur = std::move(next);
    }
    return cur;
  }

  // Removes `rel` and everything under it, links not followed; nothing when it is absent.
  Status remove(const std::string& rel, const std::string& what) {
    Fd parent = QR_TRY(open_dir(parent_of(rel), false, what));
    if (!parent.ok()) return Status();
    return remove_at(parent.get(), base_of(rel), rel, what);
  }

  // Removes what the directory `rel` holds, not the directory itself.
  Status empty(const std::string& rel, const std::string& what) {
    Fd dir = QR_TRY(open_dir(rel, false, what));
    if (!dir.ok()) return Status();
    return empty_at(dir.get(), rel, what);
  }

  // An opaque whiteout of `rel`: removes what lower layers left under it, at any depth, and keeps what this
  // layer wrote there, before the marker or after it (the OCI image spec: whiteouts apply to lower layers).
  Status opaque(const std::string& rel, const std::string& what) {
    Fd dir = QR_TRY(open_dir(rel, false, what));
    if (!dir.ok()) return Status();
    return opaque_at(dir.get(), rel, what);
  }

  // What the current layer wrote (members and the parents made for them), by inode: a path's length does
  // not count, so a layer of 10,000,000 entries holds at most that many numbers.
  void begin_layer() { layer_.clear(); }
  void written(int parent, const std::string& name) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) layer_.insert(st.st_ino);
  }

  // `name` in `parent` (the path `rel`) made ready for a new member: an existing directory stays when the
  // member is a `directory` too, anything else is removed (as Docker and containerd apply layers).
  Status clear_for(int parent, const std::string& name, const std::string& rel, bool directory,
                   const std::string& what) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status();
    if (S_ISDIR(st.st_mode) && directory) return Status();
    return remove_at(parent, name, rel, what);
  }

  // Records the mode and time directory `rel` gets at the end (`replace`: over what an earlier member said).
  // Every directory's path is held until then: at most kMaxDirPathBytes of them together.
  Status set_dir(const std::string& rel, const DirMeta& meta, bool replace, const std::string& what) {
    auto [it, added] = dirs_.try_emplace(rel, meta);
    if (!added) {
      if (replace) it->second = meta;
      return Status();
    }
    dir_bytes_ += rel.size();
    if (dir_bytes_ > kMaxDirPathBytes) {
      return Status::bad_input(what + ": the image's directory paths pass " + std::to_string(kMaxDirPathBytes) +
                               " bytes together");
    }
    return Status();
  }

  // Every directory's mode and time, deepest first (a descendant sorts after its ancestor), each opened
  // again from the root without following links: one replaced by a symlink meanwhile is left alone.
  Status finish(const std::string& what) {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      auto dir = open_dir(it->first, false, what);
      if (!dir.ok() || !dir->ok()) continue;
      if (::fchmod(dir->get(), it->second.mode) != 0) return Status::from_errno("chmod " + it->first, errno);
      const struct timespec times[2] = {it->second.mtime, it->second.mtime};
      if (::futimens(dir->get(), times) != 0) return Status::from_errno("set the time of " + it->first, errno);
    }
    return Status();
  }

  int root() const { return root_.get(); }

 private:
  Status remove_at(int parent, const std::string& name, const std::string& rel, const std::string& what) {
    struct stat st {};
    if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status();
    if (S_ISDIR(st.st_mode)) {
      Fd dir(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.ok()) return Status::from_errno(what + ": open " + rel, errno);
      QR_RETURN_IF_ERROR(empty_at(dir.get(), rel, what));
      if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0)
        return Status::from_errno(what + ": remove " + rel, errno);
      auto below = dirs_.lower_bound(rel + "/");
      while (below != dirs_.end() && below->first.starts_with(rel + "/")) {
        dir_bytes_ -= below->first.size();
        below = dirs_.erase(below);
      }
      if (dirs_.erase(rel) > 0) dir_bytes_ -= rel.size();
      return Status();
    }
    if (::unlinkat(parent, name.c_str(), 0) != 0) return Status::from_errno(what + ": remove " + rel, errno);
    return Status();
  }

  // Each level holds one descriptor while it removes its children: a tree of paths under PATH_MAX (what the
  // unpack writes) is at most 2048 deep.
  Status empty_at(int dir, const std::string& rel, const std::string& what) {
    for (const auto& n : QR_TRY(names_in(dir, rel, what))) QR_RETURN_IF_ERROR(remove_at(dir, n, join(rel, n), what));
    return Status();
  }

  // A directory the current layer did not write goes when nothing it holds is the current layer's.
  Status opaque_at(int dir, const std::string& rel, const std::string& what) {
    for (const auto& n : QR_TRY(names_in(dir, rel, what))) {
      const std::string child = join(rel, n);
      struct stat st {};
      if (::fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      const bool ours = layer_.count(st.st_ino) > 0;
      if (!S_ISDIR(st.st_mode)) {
        if (!ours && ::unlinkat(dir, n.c_str(), 0) != 0) return Status::from_errno(what + ": remove " + child, errno);
        continue;
      }
      Fd sub(::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.ok()) return Status::from_errno(what + ": open " + child, errno);
      QR_RETURN_IF_ERROR(opaque_at(sub.get(), child, what));
      if (!ours && QR_TRY(names_in(sub.get(), child, what)).empty()) QR_RETURN_IF_ERROR(remove_at(dir, n, child, what));
    }
    return Status();
  }

  static Result<std::vector<std::string>> names_in(int dir, const std::string& rel, const std::string& what) {
    std::vector<std::string> names;
    int fd = ::dup(dir);
    DIR* d = fd >= 0 ? ::fdopendir(fd) : nullptr;
    if (d == nullptr) {
      if (fd >= 0) ::close(fd);
      return Status::from_errno(what + ": read " + (rel.empty() ? "the root" : rel), errno);
    }
    ::rewinddir(d);  // the duplicate shares the descriptor's offset: a second read would start at the end
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
    }
    ::closedir(d);
    return names;
  }

  Fd root_;
  std::map<std::string, DirMeta> dirs_;  // by path below the root
  uint64_t dir_bytes_ = 0;               // of the paths in dirs_
  std::unordered_set<ino_t> layer_;
};

// ".wh.NAME" removes NAME of lower layers; ".wh..wh..opq" empties its directory.
Status whiteout(Tree& tree, const std::string& path, const std::string& what) {
  std::string dir = parent_of(path), base = base_of(path);
  if (base == ".wh..wh..opq") return tree.opaque(dir, what + ": whiteout " + path);
  // ".wh." alone, ".wh.." and ".wh..." would name the directory itself or its parent: outside the layer's
  // entry, for a whiteout at the top outside the tree (the store's directory of every image's tree).
  const std::string name = base.substr(4);
  if (name.empty() || name == "." || name == "..") {
    return Status::bad_input(what + ": whiteout " + path + " names no entry (\"" + name + "\")");
  }
  return tree.remove(join(dir, name), what + ": whiteout " + path);
}

class Extractor {
 public:
  explicit Extractor(Tree& tree) : tree_(tree) {}

  Status layer(const LayerFile& layer) {
    const std::string what = "layer " + layer.digest;
    auto opened = normalize::TarReader::open(layer.blob, size_t{1} << 20);
    if (!opened.ok()) return opened.status().with_context(what);
    normalize::TarReader reader = std::move(opened).value();
    uint64_t entries = 0, bytes = 0;
    tree_.begin_layer();
    for (;;) {
      struct archive_entry* entry = QR_TRY(reader.next(what));
      if (entry == nullptr) return Status();
      // `quorate normalize`'s default limits, a layer's: a 99 KB zstd layer filled 3 GiB of the store here.
      // A sparse entry counts at its full size.
      bytes += archive_entry_size(entry) > 0 ? static_cast<uint64_t>(archive_entry_size(entry)) : 0;
      if (++entries > normalize::kDefaultMaxEntries || bytes > normalize::kDefaultMaxExpandedBytes) {
        return Status::bad_input(what + ": expands to more than " + std::to_string(normalize::kDefaultMaxEntries) +
                                 " entries or " + std::to_string(normalize::kDefaultMaxExpandedBytes) +
                                 " bytes (a decompression bomb?)");
      }
      image_bytes_ += archive_entry_size(entry) > 0 ? static_cast<uint64_t>(archive_entry_size(entry)) : 0;
      if (image_bytes_ > kMaxImageExpandedBytes) {
        return Status::bad_input(what + ": the image's layers expand to more than " +
                                 std::to_string(kMaxImageExpandedBytes) + " bytes together");
      }
      QR_RETURN_IF_ERROR(this->entry(reader.archive(), entry, what));
    }
  }

 private:
  Status entry(struct archive* a, struct archive_entry* entry, const std::string& what) {
    const char* raw = normalize::raw_path(entry);
    auto checked = normalize::canonical_path(raw ? raw : "");
    if (!checked.ok()) return checked.status().with_context(what);
    const std::string& path = *checked;
    if (path.empty()) return Status();
    // Below PATH_MAX, as a file system's tools take it; the store's own path does not count (every name is
    // opened relative to its directory), so an image unpacks alike wherever the store is.
    if (path.size() >= PATH_MAX) {
      return Status::bad_input(what + ": a path of " + std::to_string(path.size()) + " bytes (\"" +
                               path.substr(0, 200) + "…\"); at most " + std::to_string(PATH_MAX - 1));
    }
    if (base_of(path).rfind(".wh.", 0) == 0) return whiteout(tree_, path, what);
    const auto type = archive_entry_filetype(entry);
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK) return Status();  // the sandbox has its own /dev
    const std::string name = base_of(path);
    Fd parent = QR_TRY(tree_.open_dir(parent_of(path), true, what + ": " + path));
    const char* link = archive_entry_hardlink(entry);
    QR_RETURN_IF_ERROR(tree_.clear_for(parent.get(), name, path, type == AE_IFDIR && !link, what));
    QR_RETURN_IF_ERROR(create(a, entry, parent.get(), name, path, what));
    tree_.written(parent.get(), name);
    return Status();
  }

  // The member `path` (`name` in the directory `parent`), where nothing is in its way.
  Status create(struct archive* a, struct archive_entry* entry, int parent, const std::string& name,
                const std::string& path, const std::string& what) {
    const auto type = archive_entry_filetype(entry);
    const char* link = archive_entry_hardlink(entry);
    const uint32_t mode = archive_entry_perm(entry) & 07777;
    const struct timespec mtime = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
    const struct timespec times[2] = {mtime, mtime};
    auto failed = [&](const char* doing) {
      const int e = errno;
      return Status::bad_input(what + ": " + doing + " " + path + ": " + std::strerror(e));
    };
    if (link != nullptr) {
      auto target = normalize::canonical_path(link);
      if (!target.ok() || target->empty() || target->size() >= PATH_MAX) {
        return Status::bad_input(what + ": hardlink " + path + " has a bad target");
      }
      Fd from = QR_TRY(tree_.open_dir(parent_of(*target), false, what + ": hardlink " + path + " to " + *target));
      int e = ENOENT;  // its directory is absent
      if (from.ok()) e = ::linkat(from.get(), base_of(*target).c_str(), parent, name.c_str(), 0) == 0 ? 0 : errno;
      if (e != 0) return Status::bad_input(what + ": hardlink " + path + " to " + *target + ": " + std::strerror(e));
      return Status();
    }
    switch (type) {
      case AE_IFDIR: {
        if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) return failed("create directory");
        return tree_.set_dir(path, DirMeta{mode, mtime}, true, what);
      }
      case AE_IFLNK: {
        const char* to = archive_entry_symlink(entry);
        if (to == nullptr) to = "";
        if (::symlinkat(to, parent, name.c_str()) != 0) return failed("create symlink");
        if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return failed("set the time of");
        return Status();
      }
      case AE_IFIFO: {
        if (::mkfifoat(parent, name.c_str(), 0600) != 0) return failed("create fifo");
        if (::fchmodat(parent, name.c_str(), mode, 0) != 0) return failed("chmod");
        if (::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return failed("set the time of");
        return Status();
      }
      case AE_IFREG:
        break;
      default:
        return Status::bad_input(what + ": " + path + " is of an unknown type");
    }
    Fd file(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file.ok()) return failed("create");
    const uint64_t declared = archive_entry_size(entry) > 0 ? static_cast<uint64_t>(archive_entry_size(entry)) : 0;
    const void* buf;
    size_t size;
    la_int64_t offset;
    while (true) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK) return normalize::archive_error(a, what + ": read " + path);
      // A sparse member's map may place data anywhere: only its declared size was counted.
      if (offset < 0 || static_cast<uint64_t>(offset) > declared || size > declared - static_cast<uint64_t>(offset)) {
        return Status::bad_input(what + ": " + path + " has data past its declared size of " +
                                 std::to_string(declared) + " bytes (a sparse member?)");
      }
      for (size_t done = 0; done < size;) {
        ssize_t n = ::pwrite(file.get(), static_cast<const char*>(buf) + done, size - done,
                             static_cast<off_t>(offset) + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::from_errno(what + ": write " + path, errno);
        done += static_cast<size_t>(n);
      }
    }
    if (::ftruncate(file.get(), static_cast<off_t>(declared)) != 0) return failed("set the size of");
    if (::fchmod(file.get(), mode) != 0) return failed("chmod");
    if (::futimens(file.get(), times) != 0) return failed("set the time of");
    return Status();
  }

  Tree& tree_;
  uint64_t image_bytes_ = 0;  // declared, every layer so far
};

// Mount points the sandbox needs, as empty directories at the top (whatever the image had there).
Status make_mount_points(int root) {
  for (const char* name : {"dev", "proc", "src", "out", "tmp"}) {
    struct stat st {};
    bool present = ::fstatat(root, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (present && !S_ISDIR(st.st_mode)) {
      if (::unlinkat(root, name, 0) != 0) return Status::from_errno(std::string("remove ") + name, errno);
      present = false;
    }
    if (!present && ::mkdirat(root, name, 0700) != 0) {
      return Status::from_errno(std::string("create mount point ") + name, errno);
    }
    if (::fchmodat(root, name, std::string(name) == "tmp" ? 01777 : 0755, 0) != 0) {
      return Status::from_errno(std::string("chmod mount point ") + name, errno);
    }
  }
  return Status();
}

}  // namespace

Status unpack_layers(const std::vector<LayerFile>& layers, const fs::path& dir) {
  Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.ok()) return Status::from_errno("open " + dir.string(), errno);
  Tree tree(std::move(root));
  Extractor extractor(tree);
  Status s;
  for (const auto& layer : layers) {
    s = extractor.layer(layer);
    if (!s.ok()) break;
  }
  if (s.ok()) s = tree.finish("unpack");
  if (s.ok()) s = make_mount_points(tree.root());
  if (!s.ok()) {
    // What was written goes through the descriptor too: its paths may pass PATH_MAX joined to the store's.
    (void)tree.empty("", "clean up");
    return s;
  }
  ::syncfs(tree.root());  // the rename that follows publishes it: its content must be on disk first
  return Status();
}

}  // namespace quorate::imagestore::internal
