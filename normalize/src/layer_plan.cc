// LayerPlan: last-wins paths, hardlink groups, canonical ordering, and the write of the canonical tar.
#include "layer_plan.h"

#include <optional>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "quorate/core/file.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/tar_header.h"

namespace quorate::normalize::detail {
namespace {

constexpr size_t kChunk = 1 << 20;
// Mapped input pages count in the resident set while mapped: a 16 MiB window bounds what copying adds to it.
constexpr uint64_t kMapWindow = uint64_t{16} << 20;

}  // namespace

Status copy_range(int fd, uint64_t offset, uint64_t size, Sink& out, const char* what) {
  if (size < kChunk) {
    std::string buf(static_cast<size_t>(size), '\0');
    QR_RETURN_IF_ERROR(pread_exact(fd, reinterpret_cast<uint8_t*>(buf.data()), buf.size(), offset, what));
    return out.write(std::string_view(buf));
  }
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t end = offset + size;
  while (offset < end) {
    uint64_t start = offset / page * page;
    uint64_t length = std::min(end, start + kMapWindow) - start;
    void* map = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, static_cast<off_t>(start));
    if (map == MAP_FAILED) return Status::from_errno(std::string("map ") + what, errno);
    ::madvise(map, length, MADV_SEQUENTIAL);
    Status s = out.write(std::span(static_cast<const uint8_t*>(map) + (offset - start), length - (offset - start)));
    ::munmap(map, length);
    QR_RETURN_IF_ERROR(s);
    offset = start + length;
  }
  return Status();
}

TarStream::TarStream(Sink* next, bool hash_thread) : next_(next) {
  const size_t blocks = hash_thread ? kBlocks : 1;
  for (size_t i = 0; i < blocks; ++i) blocks_.push_back(std::make_unique_for_overwrite<uint8_t[]>(kBlockBytes));
  if (hash_thread) hasher_ = std::thread([this] { hash_blocks(); });
}

TarStream::~TarStream() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (hasher_.joinable()) hasher_.join();
}

void TarStream::hash_blocks() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return hashed_ < produced_ || closing_; });
    if (hashed_ == produced_) return;  // closing, and nothing left
    const size_t index = hashed_ % kBlocks;
    lock.unlock();
    sha_.update(std::span<const uint8_t>(blocks_[index].get(), lengths_[index]));
    lock.lock();
    ++hashed_;
    cv_.notify_all();
  }
}

Status TarStream::hand_off() {
  if (!hasher_.joinable()) {  // hashed here, on the caller's thread
    const auto block = std::span<const uint8_t>(blocks_[0].get(), filled_);
    sha_.update(block);
    size_ += filled_;
    ++produced_;
    status_ = next_->write(block);
    filled_ = 0;
    return status_;
  }
  const size_t index = produced_ % kBlocks;
  lengths_[index] = filled_;
  size_ += filled_;
  {
    std::lock_guard lock(mu_);
    ++produced_;
  }
  cv_.notify_all();
  // The hasher only reads the block; writing it meanwhile is safe. It is reused once hashed.
  status_ = next_->write(std::span<const uint8_t>(blocks_[index].get(), filled_));
  filled_ = 0;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return produced_ - hashed_ < kBlocks; });
  return status_;
}

Status TarStream::write(std::string_view bytes) {
  while (!bytes.empty() && status_.ok()) {
    const size_t take = std::min(bytes.size(), kBlockBytes - filled_);
    std::memcpy(blocks_[produced_ % blocks_.size()].get() + filled_, bytes.data(), take);
    filled_ += take;
    bytes.remove_prefix(take);
    if (filled_ == kBlockBytes) QR_RETURN_IF_ERROR(hand_off());
  }
  return status_;
}

Status TarStream::write_range(int fd, uint64_t offset, uint64_t size, const char* what) {
  while (size > 0 && status_.ok()) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(size, kBlockBytes - filled_));
    QR_RETURN_IF_ERROR(pread_exact(fd, blocks_[produced_ % blocks_.size()].get() + filled_, take, offset, what));
    filled_ += take;
    offset += take;
    size -= take;
    if (filled_ == kBlockBytes) QR_RETURN_IF_ERROR(hand_off());
  }
  return status_;
}

Status TarStream::finish() {
  if (status_.ok() && filled_ > 0) status_ = hand_off();
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
  if (hasher_.joinable()) hasher_.join();
  if (status_.ok()) digest_ = sha_.finish_digest();
  return status_;
}

Result<LayerPlan> LayerPlan::create(const LayerOptions& options) {
  auto spool = QR_TRY(TempFile::create(options.temp_dir));
  return LayerPlan(options, std::move(spool));
}

void LayerPlan::apply_rules(Entry& meta, LayerSummary& summary) const {
  if (!options_->keep_owners && (meta.uid != 0 || meta.gid != 0 || !meta.uname.empty() || !meta.gname.empty())) {
    meta.uid = meta.gid = 0;
    meta.uname.clear();
    meta.gname.clear();
    ++summary.owners_reset;
  }
  const int64_t epoch = options_->source_date_epoch;
  int64_t mtime = options_->mtime == MtimeMode::kSet ? epoch : std::min(meta.mtime, epoch);
  if (mtime != meta.mtime) {
    meta.mtime = mtime;
    ++summary.times_clamped;
  }
}

Result<uint64_t> LayerPlan::spool(std::string_view bytes) {
  uint64_t offset = spool_size_;
  spool_size_ += bytes.size();
  if (spool_buffer_.size() + bytes.size() > kChunk) QR_RETURN_IF_ERROR(spool_flush());
  if (bytes.size() >= kChunk) {
    QR_RETURN_IF_ERROR(
        write_all(spool_.fd(), std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "spool file"));
  } else {
    spool_buffer_.append(bytes);
  }
  return offset;
}

Status LayerPlan::spool_flush() {
  Status s =
      write_all(spool_.fd(), std::span(reinterpret_cast<const uint8_t*>(spool_buffer_.data()), spool_buffer_.size()),
                "spool file");
  spool_buffer_.clear();
  return s;
}

void LayerPlan::put(const std::string& path, Node node, LayerSummary& summary) {
  nodes_.push_back(std::move(node));
  auto [it, inserted] = paths_.insert_or_assign(path, static_cast<uint32_t>(nodes_.size() - 1));
  if (!inserted) ++summary.duplicates_dropped;
}

Status LayerPlan::link(const std::string& path, const std::string& target, LayerSummary& summary) {
  auto it = paths_.find(target);
  if (it == paths_.end()) {
    return Status::bad_input("hardlink \"" + path + "\" points to \"" + target +
                             "\", which is not in the layer before it");
  }
  if (nodes_[it->second].meta.type == EntryType::kDirectory) {
    return Status::bad_input("hardlink \"" + path + "\" points to directory \"" + target + "\"");
  }
  uint32_t node = it->second;
  auto [self, inserted] = paths_.insert_or_assign(path, node);
  if (!inserted) ++summary.duplicates_dropped;
  return Status();
}

Status LayerPlan::write_content(const Node& node, TarStream& out) {
  switch (node.source) {
    case Node::Source::kSpool:
      return out.write_range(spool_.fd(), node.offset, node.meta.size, "spool file");
    case Node::Source::kInput:
      return out.write_range(input_fd_, node.offset, node.meta.size, "input");
    case Node::Source::kNone:
      return Status::internal("regular file without content");
    case Node::Source::kFile:
      break;
  }
  int fd = open_any_length(node.file.string(), O_RDONLY);
  if (fd < 0) return Status::from_errno("open " + node.file.string(), errno);
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != node.meta.size) {
    s = Status::bad_input(node.file.string() + " changed size while the layer was written");
  } else {
    s = out.write_range(fd, 0, node.meta.size, node.file.c_str());
  }
  ::close(fd);
  return s;
}

Status LayerPlan::check_tree() const {
  for (auto it = paths_.begin(); it != paths_.end(); ++it) {
    auto next = std::next(it);
    // Paths that start with `it->first` follow it directly in byte order: most paths have none.
    if (next == paths_.end() || !next->first.starts_with(it->first)) continue;
    if (nodes_[it->second].meta.type == EntryType::kDirectory) continue;
    auto child = paths_.lower_bound(it->first + "/");
    if (child != paths_.end() && child->first.starts_with(it->first + "/")) {
      return Status::bad_input("\"" + child->first + "\" lies under \"" + it->first +
                               "\", which is not a directory (a directory replaced by a later entry while entries "
                               "under it remain, or an entry under a file)");
    }
  }
  return Status();
}

Status LayerPlan::write(TarStream& tar_out, LayerSummary& summary) {
  QR_RETURN_IF_ERROR(check_tree());
  QR_RETURN_IF_ERROR(spool_flush());
  static const std::string kZeros(kBlockSize * 2, '\0');
  std::vector<const std::string*> primary(nodes_.size(), nullptr);
  for (const auto& [path, index] : paths_) {
    const Node& node = nodes_[index];
    Entry e = node.meta;
    e.path = path;
    const bool is_link = primary[index] != nullptr;
    if (is_link) {
      e.type = EntryType::kHardlink;
      e.link_target = *primary[index];
      e.size = 0;
      e.xattrs.clear();
    } else {
      primary[index] = &path;
    }
    QR_RETURN_IF_ERROR(tar_out.write(tar_header(e)));
    if (!is_link && e.type == EntryType::kFile && e.size > 0) {
      QR_RETURN_IF_ERROR(write_content(node, tar_out));
      QR_RETURN_IF_ERROR(tar_out.write(std::string_view(kZeros.data(), tar_padding(e.size))));
    }
    ++summary.entries;
  }
  return tar_out.write(std::string_view(kZeros.data(), kEndOfArchiveSize));
}

namespace {

// Passes each write on after asking `keep_going`.
class CheckedSink : public Sink {
 public:
  CheckedSink(Sink* next, const std::function<Status()>& keep_going) : next_(next), keep_going_(keep_going) {}
  Status write(std::span<const uint8_t> bytes) override {
    QR_RETURN_IF_ERROR(keep_going_());
    return next_->write(bytes);
  }

 private:
  Sink* next_;
  const std::function<Status()>& keep_going_;
};

}  // namespace

Status write_layer(LayerPlan& plan, const LayerOptions& options, Sink& out, LayerSummary& summary) {
  const bool compressed = options.compression != Compression::kNone;
  DigestingSink blob_hash(&out);
  Sink* blob_sink = compressed ? static_cast<Sink*>(&blob_hash) : &out;
  // Asked on both sides of a compressor: one with a worker thread takes in tens of MiB before it blocks, and
  // does most of its work in finish().
  std::optional<CheckedSink> checked_in, checked_out;
  if (options.keep_going && compressed) blob_sink = &checked_out.emplace(blob_sink, options.keep_going);
  std::unique_ptr<Sink> compressor;
  if (compressed) compressor = make_compressor(options.compression, options.level, options.threads, blob_sink);
  Sink* tar_sink = compressed ? compressor.get() : &out;
  if (options.keep_going) tar_sink = &checked_in.emplace(tar_sink, options.keep_going);
  TarStream tar(tar_sink, /*hash_thread=*/!compressed);
  QR_RETURN_IF_ERROR(plan.write(tar, summary));
  QR_RETURN_IF_ERROR(tar.finish());
  summary.diff_id = tar.digest();
  summary.tar_size = tar.size();
  if (compressed) {
    QR_RETURN_IF_ERROR(compressor->finish());
    summary.digest = blob_hash.digest();
    summary.size = blob_hash.size();
  } else {
    summary.digest = summary.diff_id;
    summary.size = summary.tar_size;
  }
  summary.media_type = layer_media_type(options.compression);
  return Status();
}

}  // namespace quorate::normalize::detail
