// normalize_layer (libarchive reader into a LayerPlan) and CanonicalLayerWriter (entries into a LayerPlan).
#include "quorate/normalize/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <optional>
#include <tuple>

#include "archive_util.h"
#include "gzip_check.h"
#include "layer_plan.h"
#include "pax_check.h"
#include "quorate/core/file.h"
#include "quorate/normalize/tar_header.h"

namespace quorate::normalize {
namespace {

using detail::entry_meta;
using detail::entry_type;
using detail::LayerPlan;
using detail::Node;

constexpr size_t kReadChunk = 1 << 20;

// Feeds libarchive from a file descriptor. While `hashing`, every byte of the input is hashed as it is read;
// otherwise (an uncompressed input whose content is read in place later) libarchive may skip data by seeking.
struct InputStream {
  int fd = -1;
  bool hashing = true;
  Sha256 hash;
  uint64_t bytes = 0;
  uint64_t last_progress = 0;
  const std::function<void(uint64_t)>* progress = nullptr;
  std::string buffer = std::string(kReadChunk, '\0');
  std::optional<detail::GzipCheck> gzip;  // gzip input: libarchive does not check its CRC, this does

  void report() {
    if (progress && *progress && bytes - last_progress >= (64u << 20)) {
      last_progress = bytes;
      (*progress)(bytes);
    }
  }

  static la_ssize_t read(struct archive* a, void* self, const void** out) {
    auto* in = static_cast<InputStream*>(self);
    for (;;) {
      ssize_t n = ::read(in->fd, in->buffer.data(), in->buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        archive_set_error(a, errno, "read error");
        return -1;
      }
      std::string_view got(in->buffer.data(), static_cast<size_t>(n));
      if (in->hashing) in->hash.update(got);
      if (in->bytes == 0 && detail::GzipCheck::is_gzip(got)) in->gzip.emplace();
      if (in->gzip) {
        if (Status s = in->gzip->update(got); !s.ok()) {
          archive_set_error(a, EINVAL, "%s", s.message().c_str());
          return -1;
        }
      }
      in->bytes += static_cast<uint64_t>(n);
      in->report();
      *out = in->buffer.data();
      return n;
    }
  }

  static la_int64_t skip(struct archive*, void* self, la_int64_t request) {
    auto* in = static_cast<InputStream*>(self);
    if (in->hashing || request <= 0) return 0;  // 0: libarchive reads instead
    if (::lseek(in->fd, request, SEEK_CUR) < 0) return 0;
    in->bytes += static_cast<uint64_t>(request);
    in->report();
    return request;
  }

  // Completes the input digest by hashing what libarchive did not need (bytes after the end-of-archive
  // blocks). Only while hashing; an input read in place is hashed by hash_whole_file().
  Status finish_hash() {
    for (;;) {
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::from_errno("read input", errno);
      if (n == 0) break;
      hash.update(std::string_view(buffer.data(), static_cast<size_t>(n)));
      if (gzip) QR_RETURN_IF_ERROR(gzip->update(std::string_view(buffer.data(), static_cast<size_t>(n))));
      bytes += static_cast<uint64_t>(n);
    }
    if (gzip) QR_RETURN_IF_ERROR(gzip->finish());
    input_digest = hash.finish_digest();
    return Status();
  }
  std::string input_digest;
};

// The digest and size of a whole file, read through a mapping.
Result<std::pair<std::string, uint64_t>> hash_whole_file(int fd, uint64_t size) {
  DigestingSink digest(nullptr);
  QR_RETURN_IF_ERROR(detail::copy_range(fd, 0, size, digest, "input"));
  return std::pair(digest.digest(), digest.size());
}

std::string describe(uint64_t index, const std::string& path) {
  return "entry " + std::to_string(index) + (path.empty() ? "" : " (\"" + path + "\")");
}

// Whether the entry carried records the canonical form drops (times other than mtime, sub-second mtime,
// file flags, ACLs). libarchive invents inode and device numbers for every tar entry, so SCHILY.ino and
// SCHILY.dev cannot be told apart from its own and are not counted, though they are dropped too.
bool has_dropped_records(struct archive_entry* ae) {
  return archive_entry_atime_is_set(ae) || archive_entry_ctime_is_set(ae) || archive_entry_birthtime_is_set(ae) ||
         archive_entry_mtime_nsec(ae) != 0 || archive_entry_fflags_text(ae) != nullptr ||
         archive_entry_acl_count(ae, ARCHIVE_ENTRY_ACL_TYPE_ACCESS | ARCHIVE_ENTRY_ACL_TYPE_DEFAULT) > 0;
}

class LayerReader {
 public:
  // `total`, when not null, also counts every expanded byte (the image's layers together).
  LayerReader(const LayerOptions& options, LayerPlan& plan, LayerSummary& summary, ExpandedTotal* total)
      : options_(options), plan_(plan), summary_(summary), total_(total) {}

  Status read(const std::filesystem::path& input) {
    int fd = ::open(input.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return Status::not_found("no such file: " + input.string());
      return Status::from_errno("open " + input.string(), errno);
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd);
      return Status::bad_input(input.string() + " is a directory, not a layer");
    }
    stream_.fd = fd;
    stream_.hashing = options_.hash_input;
    stream_.progress = &options_.progress;
    seekable_ = S_ISREG(st.st_mode);
    input_size_ = static_cast<uint64_t>(st.st_size);
    Status s = read_archive();
    if (s.ok() && stream_.hashing) s = stream_.finish_hash();
    if (!s.ok()) {
      ::close(fd);
      return s.with_context(input.string());
    }
    if (options_.hash_input) {
      summary_.input_digest = stream_.input_digest;
      summary_.input_size = stream_.bytes;
    }
    input_fd_ = fd;  // kInput nodes read from it at write time
    return Status();
  }

  // For an input read in place, the input digest is computed on a second core while the output is written.
  std::future<Result<std::pair<std::string, uint64_t>>> hash_in_background() {
    if (!in_place_ || !options_.hash_input) return {};
    return std::async(std::launch::async, hash_whole_file, input_fd_, input_size_);
  }

  ~LayerReader() {
    if (input_fd_ >= 0) ::close(input_fd_);
  }

 private:
  Status read_archive() {
    std::unique_ptr<struct archive, ArchiveCloser> a(archive_read_new());
    support_layer_compressions(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_set_read_callback(a.get(), &InputStream::read);
    archive_read_set_skip_callback(a.get(), &InputStream::skip);
    archive_read_set_callback_data(a.get(), &stream_);
    if (archive_read_open1(a.get()) != ARCHIVE_OK) {
      return archive_error(a.get(), "not a tar layer");
    }
    std::string previous;
    for (uint64_t index = 0;; ++index) {
      auto next = next_entry(a.get(), describe(index, "") + (previous.empty() ? "" : " after \"" + previous + "\""));
      if (!next.ok() && index == 0 && archive_format(a.get()) == 0) return archive_error(a.get(), "not a tar layer");
      struct archive_entry* ae = QR_TRY(std::move(next));
      if (ae == nullptr) break;
      if (index == 0) {
        // An uncompressed tar in a regular file: content stays where it is and is read in place at write
        // time, instead of being copied to the spool and back.
        in_place_ = seekable_ && archive_filter_count(a.get()) == 1;
        if (in_place_) {
          stream_.hashing = false;
          plan_.set_input_fd(stream_.fd);
        }
        pax_.emplace(stream_.fd, seekable_, in_place_);
      }
      if (index >= options_.max_entries) {
        return Status::bad_input("more than " + std::to_string(options_.max_entries) + " entries");
      }
      QR_RETURN_IF_ERROR(pax_->check(a.get(), describe(index, raw_path(ae) ? raw_path(ae) : "")));
      QR_RETURN_IF_ERROR(read_entry(a.get(), ae, index, previous));
    }
    return Status();
  }

  Status read_entry(struct archive* a, struct archive_entry* ae, uint64_t index, std::string& previous) {
    const char* raw = raw_path(ae);
    if (raw == nullptr) return Status::bad_input(describe(index, "") + " has no name");
    std::string where = describe(index, raw);
    auto checked = canonical_path(raw);
    if (!checked.ok()) return checked.status().with_context(describe(index, ""));
    std::string path = std::move(checked).value();
    std::string_view as_stored(raw);
    if (!as_stored.empty() && as_stored.back() == '/') as_stored.remove_suffix(1);
    if (as_stored != path) ++summary_.paths_cleaned;
    if (path.empty()) {
      // The root directory itself is not an entry of a layer; anything else named "." or "" would vanish.
      if (archive_entry_hardlink(ae) == nullptr && archive_entry_filetype(ae) == AE_IFDIR) return Status();
      return Status::bad_input(where + ": " +
                               (*raw == '\0'
                                    ? std::string("an entry with an empty name")
                                    : "a non-directory entry named \"" + std::string(raw) + "\", the root directory") +
                               " (only a directory may name the root)");
    }
    if (!previous.empty() && path < previous) ++summary_.reordered;
    previous = path;
    if (has_dropped_records(ae)) ++summary_.pax_records_dropped;

    expanded_ += detail::kBlockSize;
    // Names are held in memory until the layer is written, and a pax header makes a path of any length: 3 MB
    // of gzip held 2.9 GB of 990 KB paths. They count against the expanded size, and together against
    // kMaxNameBytes.
    const char* link = archive_entry_hardlink(ae) ? archive_entry_hardlink(ae) : archive_entry_symlink(ae);
    const uint64_t names_before = names_;
    QR_RETURN_IF_ERROR(detail::count_names(where, path, link, names_));
    expanded_ += names_ - names_before;
    QR_RETURN_IF_ERROR(check_expanded(where));
    if (const char* target = archive_entry_hardlink(ae)) {
      auto canonical_target = canonical_path(target);
      if (!canonical_target.ok()) return canonical_target.status().with_context(where + " hardlink target");
      return plan_.link(path, *canonical_target, summary_);
    }
    auto type = QR_TRY(entry_type(ae, where));
    Node node;
    node.meta = entry_meta(ae, type);
    const uint64_t metadata_before = names_;
    QR_RETURN_IF_ERROR(detail::count_metadata(where, node.meta, names_));
    expanded_ += names_ - metadata_before;
    QR_RETURN_IF_ERROR(check_expanded(where));
    plan_.apply_rules(node.meta, summary_);
    if (type == EntryType::kSymlink) {
      const char* target = archive_entry_symlink(ae);
      if (target == nullptr) return Status::bad_input(where + ": symlink without a target");
      node.meta.link_target = target;
    }
    if (type == EntryType::kFile) QR_RETURN_IF_ERROR(read_content(a, ae, node, where));
    plan_.put(path, std::move(node), summary_);
    return Status();
  }

  Status read_content(struct archive* a, struct archive_entry* ae, Node& node, const std::string& where) {
    if (in_place_ && archive_entry_sparse_count(ae) == 0 && archive_entry_size_is_set(ae)) {
      node.source = Node::Source::kInput;
      node.offset = static_cast<uint64_t>(archive_filter_bytes(a, 0));
      node.meta.size = static_cast<uint64_t>(archive_entry_size(ae));
      expanded_ += node.meta.size;
      if (node.offset + node.meta.size > input_size_) {
        return Status::bad_input(where + ": truncated: content runs past the end of the input");
      }
      return check_expanded(where);
    }
    node.source = Node::Source::kSpool;
    node.meta.size = 0;
    bool first = true;
    for (;;) {
      la_ssize_t n = archive_read_data(a, buffer_.data(), buffer_.size());
      if (n < 0) return archive_error(a, where);
      if (n == 0) break;
      expanded_ += static_cast<uint64_t>(n);
      QR_RETURN_IF_ERROR(check_expanded(where));
      auto offset = QR_TRY(plan_.spool(std::string_view(buffer_.data(), static_cast<size_t>(n))));
      if (first) node.offset = offset;
      first = false;
      node.meta.size += static_cast<uint64_t>(n);
    }
    if (archive_entry_size_is_set(ae) && static_cast<uint64_t>(archive_entry_size(ae)) != node.meta.size) {
      return Status::bad_input(where + ": content is " + std::to_string(node.meta.size) + " bytes, header says " +
                               std::to_string(archive_entry_size(ae)));
    }
    return Status();
  }

  // The layer's limit first, then the total of the layers read before it and this one so far.
  Status check_expanded(const std::string& where) {
    if (expanded_ > options_.max_expanded_bytes) {
      return Status::bad_input(where + ": expanded layer size exceeds the limit of " +
                               std::to_string(options_.max_expanded_bytes) + " bytes (a decompression bomb?)");
    }
    if (total_ == nullptr) return Status();
    const uint64_t more = expanded_ - totalled_;
    totalled_ = expanded_;
    return total_->add(more, where);
  }

  const LayerOptions& options_;
  LayerPlan& plan_;
  LayerSummary& summary_;
  InputStream stream_;
  ExpandedTotal* total_;
  uint64_t expanded_ = 0;
  uint64_t totalled_ = 0;  // how much of expanded_ has been added to total_
  uint64_t names_ = 0;     // bytes of paths and link targets held
  bool seekable_ = false;
  bool in_place_ = false;
  std::optional<detail::PaxRecordCheck> pax_;  // made at the first entry, once in_place_ is known
  uint64_t input_size_ = 0;
  int input_fd_ = -1;
  std::string buffer_ = std::string(kReadChunk, '\0');
};

}  // namespace

Result<std::string> canonical_path(std::string_view raw) {
  auto bad = [&](const char* why) {
    return Status::bad_input(std::string("path \"") + std::string(raw) + "\" " + why);
  };
  if (raw.find('\0') != std::string_view::npos) return bad("contains a NUL byte");
  if (!raw.empty() && raw.front() == '/') return bad("is absolute");
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return bad("has a \"..\" component");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Result<LayerSummary> normalize_layer(const std::filesystem::path& input, Sink& out, const LayerOptions& options,
                                     ExpandedTotal* total) {
  QR_RETURN_IF_ERROR(check_source_date_epoch(options.source_date_epoch));
  LayerSummary summary;
  auto plan = QR_TRY(LayerPlan::create(options));
  LayerReader reader(options, plan, summary, total);
  QR_RETURN_IF_ERROR(reader.read(input));
  auto input_hash = reader.hash_in_background();
  Status written = detail::write_layer(plan, options, out, summary);
  if (input_hash.valid()) {
    auto hashed = input_hash.get();
    if (written.ok() && !hashed.ok()) written = hashed.status().with_context(input.string());
    if (hashed.ok()) std::tie(summary.input_digest, summary.input_size) = hashed.value();
  }
  QR_RETURN_IF_ERROR(written);
  return summary;
}

struct CanonicalLayerWriter::Impl {
  LayerOptions options;
  std::optional<LayerPlan> plan;
  Status error;  // the spool could not be created
  LayerSummary summary;
  std::vector<std::pair<std::string, std::string>> links;  // hardlinks, resolved at write()
};

CanonicalLayerWriter::CanonicalLayerWriter(LayerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->error = check_source_date_epoch(impl_->options.source_date_epoch);
  if (!impl_->error.ok()) return;
  auto plan = LayerPlan::create(impl_->options);
  if (plan.ok()) {
    impl_->plan.emplace(std::move(plan).value());
  } else {
    impl_->error = plan.status();
  }
}

CanonicalLayerWriter::~CanonicalLayerWriter() = default;

Status CanonicalLayerWriter::add_bytes(Entry entry, std::string_view bytes) {
  QR_RETURN_IF_ERROR(impl_->error);
  auto path = QR_TRY(canonical_path(entry.path));
  if (path.empty()) return Status::bad_input("regular file with an empty path");
  Node node;
  entry.type = EntryType::kFile;
  entry.size = bytes.size();
  node.meta = std::move(entry);
  node.source = Node::Source::kSpool;
  node.offset = QR_TRY(impl_->plan->spool(bytes));
  impl_->plan->apply_rules(node.meta, impl_->summary);
  impl_->plan->put(path, std::move(node), impl_->summary);
  return Status();
}

Status CanonicalLayerWriter::add_file(Entry entry, const std::filesystem::path& source) {
  QR_RETURN_IF_ERROR(impl_->error);
  auto path = QR_TRY(canonical_path(entry.path));
  if (path.empty()) return Status::bad_input("regular file with an empty path");
  struct stat st;
  int fd = open_any_length(source.string(), O_PATH);
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    return Status::from_errno("stat " + source.string(), err);
  }
  ::close(fd);
  if (!S_ISREG(st.st_mode)) return Status::bad_input(source.string() + " is not a regular file");
  Node node;
  entry.type = EntryType::kFile;
  entry.size = static_cast<uint64_t>(st.st_size);
  node.meta = std::move(entry);
  node.source = Node::Source::kFile;
  node.file = source;
  impl_->plan->apply_rules(node.meta, impl_->summary);
  impl_->plan->put(path, std::move(node), impl_->summary);
  return Status();
}

Status CanonicalLayerWriter::add(Entry entry) {
  QR_RETURN_IF_ERROR(impl_->error);
  auto path = QR_TRY(canonical_path(entry.path));
  if (entry.type == EntryType::kFile && entry.size != 0) {
    return Status::usage("add(): regular file \"" + path + "\" has content; use add_bytes or add_file");
  }
  if (path.empty()) return Status::bad_input("entry with an empty path");
  if (entry.type == EntryType::kHardlink) {
    auto target = QR_TRY(canonical_path(entry.link_target));
    impl_->links.emplace_back(path, target);
    return Status();
  }
  Node node;
  node.meta = std::move(entry);
  impl_->plan->apply_rules(node.meta, impl_->summary);
  impl_->plan->put(path, std::move(node), impl_->summary);
  return Status();
}

Result<LayerSummary> CanonicalLayerWriter::write(Sink& out) {
  QR_RETURN_IF_ERROR(impl_->error);
  for (const auto& [path, target] : impl_->links) {
    QR_RETURN_IF_ERROR(impl_->plan->link(path, target, impl_->summary));
  }
  impl_->links.clear();
  LayerSummary summary = impl_->summary;
  QR_RETURN_IF_ERROR(detail::write_layer(*impl_->plan, impl_->options, out, summary));
  return summary;
}

}  // namespace quorate::normalize
