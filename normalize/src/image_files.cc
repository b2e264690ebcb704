// ImageFiles: an image's members from a directory, or from a tar extracted into a private directory.
#include "quorate/normalize/image_files.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "archive_util.h"
#include "quorate/core/file.h"
#include "quorate/core/temporaries.h"
#include "quorate/normalize/layer.h"

namespace quorate::normalize {
namespace fs = std::filesystem;
namespace {

// A symlink's target as an archive path; bad_input when it leaves the archive.
Result<std::string> resolve_symlink(const std::string& name, const std::string& target) {
  if (!target.empty() && target[0] == '/') return Status::bad_input("symlink " + name + " points outside the archive");
  std::vector<std::string> parts;
  std::string dir = name.find('/') == std::string::npos ? "" : name.substr(0, name.rfind('/'));
  std::string joined = dir.empty() ? target : dir + "/" + target;
  size_t start = 0;
  while (start <= joined.size()) {
    size_t end = joined.find('/', start);
    if (end == std::string::npos) end = joined.size();
    std::string part = joined.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) return Status::bad_input("symlink " + name + " points outside the archive");
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

}  // namespace

Result<std::unique_ptr<ImageFiles>> ImageFiles::open_dir(const fs::path& dir) {
  std::unique_ptr<ImageFiles> s(new ImageFiles());
  s->root_ = dir;
  return s;
}

Result<std::unique_ptr<ImageFiles>> ImageFiles::extract(const fs::path& tar, const fs::path& temp_dir,
                                                        uint64_t max_bytes) {
  std::unique_ptr<ImageFiles> s(new ImageFiles());
  s->temp_.emplace(QR_TRY(TempDir::create(temp_parent(temp_dir), "quorate-image.")));
  s->root_ = s->temp_->path();
  QR_RETURN_IF_ERROR(s->extract_all(tar, max_bytes));
  return s;
}

ImageFiles::~ImageFiles() = default;

Result<fs::path> ImageFiles::path_of(const std::string& raw_name, const std::string& what) const {
  auto checked = canonical_path(raw_name);
  if (!checked.ok()) return checked.status().with_context(what);
  std::string name = *checked;
  for (int hops = 0; hops < 16; ++hops) {
    auto link = links_.find(name);
    if (link == links_.end()) break;
    name = link->second;
  }
  // Each component is checked without following links: a symlink in an image directory could lead anywhere
  // on the host, so it is refused, and said to be one rather than reported missing.
  fs::path p = root_;
  struct stat st;
  for (size_t start = 0; start <= name.size();) {
    size_t slash = std::min(name.find('/', start), name.size());
    p /= name.substr(start, slash - start);
    start = slash + 1;
    if (::lstat(p.c_str(), &st) != 0) return Status::bad_input(what + ": " + raw_name + " is missing from the image");
    if (S_ISLNK(st.st_mode)) {
      return Status::bad_input(what + ": " + raw_name + " is a symlink (" + p.lexically_relative(root_).string() +
                               "); refused: an image directory's members must be regular files and directories");
    }
  }
  if (!S_ISREG(st.st_mode)) return Status::bad_input(what + ": " + raw_name + " is not a regular file");
  return p;
}

Status ImageFiles::extract_all(const fs::path& tar, uint64_t max_bytes) {
  TarReader reader = QR_TRY(TarReader::open(tar));
  uint64_t total = 0, members = 0;
  for (;;) {
    struct archive_entry* ae = QR_TRY(reader.next(tar.string()));
    if (ae == nullptr) break;
    // An image archive holds a few files a layer (docker save, skopeo); each member here costs a file or a
    // remembered link.
    if (++members > kMaxArchiveMembers) {
      return Status::bad_input(tar.string() + ": more than " + std::to_string(kMaxArchiveMembers) +
                               " members; an image archive holds a few a layer");
    }
    const char* raw = raw_path(ae);
    std::string raw_name = raw ? raw : "";
    // Every link is remembered by name and target: 10,000 symlinks of 1 MB pax names and targets, 635 KB of
    // zstd for 2,000 of them, held 3 GB.
    const char* link = archive_entry_hardlink(ae) ? archive_entry_hardlink(ae) : archive_entry_symlink(ae);
    if (raw_name.size() > kMaxMemberName || (link != nullptr && std::strlen(link) > kMaxMemberName)) {
      return Status::bad_input(tar.string() + ": member " + std::to_string(members) +
                               " has a name or link target of more than " + std::to_string(kMaxMemberName) +
                               " bytes; no image archive has one");
    }
    auto name = canonical_path(raw_name);
    if (!name.ok()) return name.status().with_context(tar.string());
    auto type = archive_entry_filetype(ae);
    if (type == AE_IFDIR) {
      QR_RETURN_IF_ERROR(make_dirs(*name));
    } else if (type == AE_IFREG && archive_entry_hardlink(ae) == nullptr) {
      total += static_cast<uint64_t>(archive_entry_size(ae));
      if (total > max_bytes) {
        return Status::bad_input(tar.string() + ": expands to more than the limit of " + std::to_string(max_bytes) +
                                 " bytes");
      }
      QR_RETURN_IF_ERROR(write_member(reader.archive(), *name, static_cast<uint64_t>(archive_entry_size(ae)), tar));
    } else if (const char* target = archive_entry_hardlink(ae)) {
      auto t = canonical_path(target);
      if (!t.ok()) return t.status().with_context(tar.string() + ": hardlink " + *name);
      links_[*name] = *t;
    } else if (type == AE_IFLNK) {
      const char* to = archive_entry_symlink(ae);
      auto t = resolve_symlink(*name, to ? to : "");
      if (!t.ok()) return t.status().with_context(tar.string());
      links_[*name] = *t;
    }  // anything else has no place in an image archive and is ignored
  }
  return Status();
}

// Each directory is made inside the extraction root through its descriptor, never by path: when an interrupt
// has removed the root meanwhile, this fails instead of making it again. `name` is canonical (no "..").
Status ImageFiles::make_dirs(const std::string& name) {
  if (name.empty()) return Status();  // the root itself ("./")
  int root = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return Status::from_errno("open " + root_.string(), errno);
  Status s;
  for (size_t slash = name.find('/');; slash = name.find('/', slash + 1)) {
    std::string prefix = name.substr(0, slash);
    if (::mkdirat(root, prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      s = Status::from_errno("create " + (root_ / prefix).string(), errno);
      break;
    }
    if (slash == std::string::npos) break;
  }
  ::close(root);
  return s;
}

Status ImageFiles::write_member(struct archive* a, const std::string& name, uint64_t declared, const fs::path& tar) {
  if (name.find('/') != std::string::npos) QR_RETURN_IF_ERROR(make_dirs(name.substr(0, name.rfind('/'))));
  links_.erase(name);
  fs::path p = root_ / name;
  ::unlink(p.c_str());  // a later member of the same name wins, as tar does
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::from_errno("create " + p.string(), errno);
  Status s;
  const void* buf;
  size_t size;
  la_int64_t offset;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      s = archive_error(a, tar.string() + ": " + name);
      break;
    }
    // A sparse member's map may place data anywhere: only what lies within its declared size is counted.
    if (offset < 0 || static_cast<uint64_t>(offset) > declared || size > declared - static_cast<uint64_t>(offset)) {
      s = Status::bad_input(tar.string() + ": " + name + " has data past its declared size of " +
                            std::to_string(declared) + " bytes (a sparse member?)");
      break;
    }
    if (::lseek(fd, offset, SEEK_SET) < 0) {
      s = Status::from_errno("seek " + p.string(), errno);
      break;
    }
    s = write_all(fd, std::span(static_cast<const uint8_t*>(buf), size), p.c_str());
    if (!s.ok()) break;
  }
  ::close(fd);
  return s;
}

}  // namespace quorate::normalize
