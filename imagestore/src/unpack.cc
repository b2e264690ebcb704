// unpack_layers: a root file system from layer tars, written by libarchive's disk writer with every path
// checked first; whiteouts applied; nothing written or removed through a symlink.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "quorate/normalize/layer.h"
#include "quorate/normalize/tar_reader.h"
#include "store_internal.h"

namespace quorate::imagestore::internal {
namespace fs = std::filesystem;
namespace {

// True when every component of `rel` below `root` that exists is a real directory (no symlink on the way).
bool no_link_on_the_way(const fs::path& root, const std::string& rel) {
  fs::path p = root;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) break;
    p /= rel.substr(pos, slash - pos);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return true;  // absent: nothing to follow
    if (!S_ISDIR(st.st_mode)) return false;
    pos = slash + 1;
  }
  return true;
}

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}
std::string base_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// ".wh.NAME" removes NAME of lower layers; ".wh..wh..opq" empties its directory.
Status whiteout(const fs::path& root, const std::string& path, const std::string& what) {
  if (!no_link_on_the_way(root, path)) return Status::bad_input(what + ": whiteout " + path + " lies behind a symlink");
  std::string dir = parent_of(path), base = base_of(path);
  fs::path d = dir.empty() ? root : root / dir;
  std::error_code ec;
  if (base == ".wh..wh..opq") {
    if (fs::is_directory(fs::symlink_status(d, ec))) {
      for (const auto& e : fs::directory_iterator(d, ec)) fs::remove_all(e.path(), ec);
    }
  } else {
    // ".wh." alone, ".wh.." and ".wh..." would name the directory itself or its parent: outside the layer's
    // entry, for a whiteout at the top outside the tree (the store's directory of every image's tree).
    const std::string name = base.substr(4);
    if (name.empty() || name == "." || name == "..") {
      return Status::bad_input(what + ": whiteout " + path + " names no entry (\"" + name + "\")");
    }
    fs::remove_all(d / name, ec);  // remove_all removes a symlink itself, never its target
  }
  if (ec) return Status::io(what + ": whiteout " + path + ": " + ec.message());
  return Status();
}

class Extractor {
 public:
  explicit Extractor(const fs::path& root) : root_(root), disk_(archive_write_disk_new()) {
    archive_write_disk_set_options(disk_, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_UNLINK |
                                              ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  }
  ~Extractor() { archive_write_free(disk_); }

  Status layer(const LayerFile& layer) {
    const std::string what = "layer " + layer.digest;
    auto opened = normalize::TarReader::open(layer.blob, size_t{1} << 20);
    if (!opened.ok()) return opened.status().with_context(what);
    normalize::TarReader reader = std::move(opened).value();
    uint64_t entries = 0, bytes = 0;
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
      QR_RETURN_IF_ERROR(this->entry(reader.archive(), entry, what));
    }
  }

 private:
  static std::string error(struct archive* a) { return archive_error_string(a) ? archive_error_string(a) : "?"; }

  Status entry(struct archive* a, struct archive_entry* entry, const std::string& what) {
    const char* raw = normalize::raw_path(entry);
    auto path = normalize::canonical_path(raw ? raw : "");
    if (!path.ok()) return path.status().with_context(what);
    if (path->empty()) return Status();
    if (base_of(*path).rfind(".wh.", 0) == 0) return whiteout(root_, *path, what);
    auto type = archive_entry_filetype(entry);
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK) return Status();  // the sandbox has its own /dev
    if (!no_link_on_the_way(root_, *path)) return Status::bad_input(what + ": " + *path + " lies behind a symlink");
    archive_entry_set_pathname(entry, (root_ / *path).c_str());
    if (const char* link = archive_entry_hardlink(entry)) {
      auto target = normalize::canonical_path(link);
      if (!target.ok() || target->empty()) return Status::bad_input(what + ": hardlink " + *path + " has a bad target");
      archive_entry_set_hardlink(entry, (root_ / *target).c_str());
    }
    if (archive_write_header(disk_, entry) != ARCHIVE_OK) {
      return Status::bad_input(what + ": extract " + *path + ": " + error(disk_));
    }
    const void* buf;
    size_t size;
    la_int64_t offset;
    while (true) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK) return Status::bad_input(what + ": read " + *path + ": " + error(a));
      if (archive_write_data_block(disk_, buf, size, offset) != ARCHIVE_OK) {
        return Status::io(what + ": write " + *path + ": " + error(disk_));
      }
    }
    if (archive_write_finish_entry(disk_) != ARCHIVE_OK) {
      return Status::io(what + ": finish " + *path + ": " + error(disk_));
    }
    return Status();
  }

  fs::path root_;
  struct archive* disk_;
};

// Mount points the sandbox needs, as empty directories at the top (whatever the image had there).
Status make_mount_points(const fs::path& root) {
  for (const char* name : {"dev", "proc", "src", "out", "tmp"}) {
    fs::path p = root / name;
    std::error_code ec;
    auto st = fs::symlink_status(p, ec);
    if (fs::exists(st) && !fs::is_directory(st)) fs::remove(p, ec);
    if (!fs::is_directory(fs::symlink_status(p, ec))) fs::create_directory(p, ec);
    if (ec) return Status::io("create mount point " + p.string() + ": " + ec.message());
    ::chmod(p.c_str(), std::string(name) == "tmp" ? 01777 : 0755);
  }
  return Status();
}

}  // namespace

Status unpack_layers(const std::vector<LayerFile>& layers, const fs::path& dir) {
  Extractor extractor(dir);
  for (const auto& layer : layers) QR_RETURN_IF_ERROR(extractor.layer(layer));
  QR_RETURN_IF_ERROR(make_mount_points(dir));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::syncfs(fd);  // the rename that follows publishes it: its content must be on disk first
    ::close(fd);
  }
  return Status();
}

}  // namespace quorate::imagestore::internal
