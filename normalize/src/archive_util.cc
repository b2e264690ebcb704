// libarchive glue: entry types, metadata and errors.
#include "archive_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "pax_check.h"

namespace quorate::normalize {

void ArchiveCloser::operator()(struct archive* a) const { archive_read_free(a); }

void support_layer_compressions(struct archive* a) {
  // Each only when libarchive was built with its library: without it, libarchive would run the program instead.
  if (archive_zlib_version() != nullptr) archive_read_support_filter_gzip(a);
  if (archive_libzstd_version() != nullptr) archive_read_support_filter_zstd(a);
  if (archive_liblzma_version() != nullptr) archive_read_support_filter_xz(a);
  if (archive_bzlib_version() != nullptr) archive_read_support_filter_bzip2(a);
}

Result<ArchivePtr> open_tar(const std::filesystem::path& path, size_t block) {
  ArchivePtr a(archive_read_new());
  if (!a) return Status::internal("libarchive: out of memory");
  archive_read_support_format_tar(a.get());
  support_layer_compressions(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), block) != ARCHIVE_OK)
    return archive_error(a.get(), path.string());
  return a;
}

namespace {

// libarchive's message for a name it could not convert to the locale (archive_read_support_format_tar.c,
// set_conversion_failed_error): "<Pathname|Linkname|Uname|Gname> can't be converted from <charset> to current
// locale." Nothing else it reports as a warning leaves the entry as the archive describes it.
bool is_conversion_warning(const char* message) {
  if (message == nullptr) return false;
  std::string_view m(message);
  return m.find(" can't be converted from ") != std::string_view::npos && m.ends_with(" to current locale.");
}

}  // namespace

Result<struct archive_entry*> next_entry(struct archive* a, const std::string& where) {
  struct archive_entry* ae = nullptr;
  int r = archive_read_next_header(a, &ae);
  if (r == ARCHIVE_EOF) return static_cast<struct archive_entry*>(nullptr);
  if (r == ARCHIVE_WARN && archive_error_string(a) == nullptr) {
    return Status::bad_input(where + ": libarchive warned without saying why (a malformed GNU sparse map?)");
  }
  if (r != ARCHIVE_OK && !(r == ARCHIVE_WARN && is_conversion_warning(archive_error_string(a)))) {
    return archive_error(a, where);
  }
  // A link, directory, device or fifo has no data in tar, but a pax `size` record can give it some: libarchive
  // then skips that many bytes (decompressing them, uncounted), while Go's and Python's readers read them as
  // the next entries. The two would see different files; neither reading is taken.
  // Its reported size can be made 0 (SCHILY.realsize) while the data stays: whether there is any is asked of
  // the data itself.
  const bool header_only = archive_entry_hardlink(ae) != nullptr || archive_entry_filetype(ae) != AE_IFREG;
  if (!header_only) return ae;
  char byte;
  la_ssize_t data = archive_entry_size(ae) > 0 ? 1 : archive_read_data(a, &byte, 1);
  if (data < 0) return archive_error(a, where);
  if (data > 0) {
    const char* path = raw_path(ae);
    return Status::bad_input(where + ": \"" + std::string(path ? path : "").substr(0, 200) + "\", a " +
                             (archive_entry_hardlink(ae) ? "hardlink" : "non-regular entry") +
                             ", has data (from a pax size record): libarchive skips it, Go's and Python's tar "
                             "readers take it for the next entries");
  }
  return ae;
}

struct TarReader::Impl {
  ArchivePtr a;
  int fd = -1;
  bool seekable = false;
  std::optional<detail::PaxRecordCheck> pax;
  ~Impl() {
    pax.reset();
    a.reset();
    if (fd >= 0) ::close(fd);
  }
};

TarReader::TarReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TarReader::TarReader(TarReader&& other) noexcept = default;
TarReader& TarReader::operator=(TarReader&& other) noexcept = default;
TarReader::~TarReader() = default;

Result<TarReader> TarReader::open(const std::filesystem::path& path, size_t block) {
  auto impl = std::make_unique<Impl>();
  impl->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (impl->fd < 0) return Status::from_errno("open " + path.string(), errno);
  struct stat st {};
  impl->seekable = ::fstat(impl->fd, &st) == 0 && S_ISREG(st.st_mode);
  impl->a.reset(archive_read_new());
  if (!impl->a) return Status::internal("libarchive: out of memory");
  archive_read_support_format_tar(impl->a.get());
  support_layer_compressions(impl->a.get());
  if (archive_read_open_fd(impl->a.get(), impl->fd, block) != ARCHIVE_OK) {
    return archive_error(impl->a.get(), path.string());
  }
  return TarReader(std::move(impl));
}

Result<struct archive_entry*> TarReader::next(const std::string& where) {
  struct archive_entry* ae = QR_TRY(next_entry(impl_->a.get(), where));
  if (ae == nullptr) return ae;
  if (!impl_->pax) impl_->pax.emplace(impl_->fd, impl_->seekable, archive_filter_count(impl_->a.get()) == 1);
  const char* path = raw_path(ae);
  QR_RETURN_IF_ERROR(
      impl_->pax->check(impl_->a.get(), where + " (\"" + std::string(path ? path : "").substr(0, 200) + "\")"));
  return ae;
}

struct archive* TarReader::archive() const {
  return impl_->a.get();
}

Status archive_error(struct archive* a, const std::string& where) {
  const char* msg = archive_error_string(a);
  return Status::bad_input(where + ": " + (msg ? msg : "unreadable archive data"));
}

const char* raw_path(struct archive_entry* ae) {
  const char* p = archive_entry_pathname(ae);
  return p ? p : archive_entry_pathname_utf8(ae);
}

}  // namespace quorate::normalize

namespace quorate::normalize::detail {

Result<EntryType> entry_type(struct archive_entry* ae, const std::string& where) {
  switch (archive_entry_filetype(ae)) {
    case AE_IFREG:
      return EntryType::kFile;
    case AE_IFDIR:
      return EntryType::kDirectory;
    case AE_IFLNK:
      return EntryType::kSymlink;
    case AE_IFCHR:
      return EntryType::kCharDevice;
    case AE_IFBLK:
      return EntryType::kBlockDevice;
    case AE_IFIFO:
      return EntryType::kFifo;
    case AE_IFSOCK:
      return Status::bad_input(where + ": sockets cannot be stored in a layer");
    default:
      return Status::bad_input(where + ": unknown entry type");
  }
}

Entry entry_meta(struct archive_entry* ae, EntryType type) {
  Entry e;
  e.type = type;
  e.mode = archive_entry_perm(ae) & 07777;
  e.uid = static_cast<uint32_t>(archive_entry_uid(ae));
  e.gid = static_cast<uint32_t>(archive_entry_gid(ae));
  if (const char* u = archive_entry_uname(ae)) e.uname = u;
  if (const char* g = archive_entry_gname(ae)) e.gname = g;
  e.mtime = archive_entry_mtime(ae);
  if (type == EntryType::kCharDevice || type == EntryType::kBlockDevice) {
    e.devmajor = static_cast<uint32_t>(archive_entry_rdevmajor(ae));
    e.devminor = static_cast<uint32_t>(archive_entry_rdevminor(ae));
  }
  archive_entry_xattr_reset(ae);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(ae, &name, &value, &size) == ARCHIVE_OK) {
    e.xattrs[name] = std::string(static_cast<const char*>(value), size);
  }
  return e;
}

Status count_names(const std::string& where_in, const std::string& path, const char* link, uint64_t& names) {
  const size_t link_size = link ? std::strlen(link) : 0;
  const std::string where = where_in.size() > 200 ? where_in.substr(0, 200) + "…" : where_in;
  if (path.size() > kMaxNameBytesEach || link_size > kMaxNameBytesEach) {
    return Status::bad_input(where + ": a path or link target of more than " + std::to_string(kMaxNameBytesEach) +
                             " bytes (a file system takes 4096)");
  }
  names += path.size() + link_size;
  if (names > kMaxNameBytes) {
    return Status::bad_input(where + ": the paths and link targets of the layer pass " + std::to_string(kMaxNameBytes) +
                             " bytes together");
  }
  return Status();
}

Status count_metadata(const std::string& where_in, const Entry& meta, uint64_t& names) {
  const std::string where = where_in.size() > 200 ? where_in.substr(0, 200) + "…" : where_in;
  auto count = [&](std::string_view what, size_t size) {
    if (size > kMaxNameBytesEach) {
      return Status::bad_input(where + ": " + std::string(what) + " of more than " + std::to_string(kMaxNameBytesEach) +
                               " bytes");
    }
    names += size;
    if (names > kMaxNameBytes) {
      return Status::bad_input(where + ": the paths, link targets, owner names and xattrs of the layer pass " +
                               std::to_string(kMaxNameBytes) + " bytes together");
    }
    return Status();
  };
  QR_RETURN_IF_ERROR(count("an owner name", meta.uname.size()));
  QR_RETURN_IF_ERROR(count("a group name", meta.gname.size()));
  for (const auto& [name, value] : meta.xattrs) {
    QR_RETURN_IF_ERROR(count("an xattr name", name.size()));
    QR_RETURN_IF_ERROR(count("an xattr value", value.size()));
  }
  return Status();
}

}  // namespace quorate::normalize::detail
