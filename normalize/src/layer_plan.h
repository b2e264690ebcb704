// The in-memory plan of a canonical layer: one node per inode, paths pointing at nodes, content spooled.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/core/sink.h"
#include "quorate/core/status.h"
#include "quorate/normalize/entry.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize::detail {

// One inode: metadata and content shared by every path hardlinked to it.
struct Node {
  Entry meta;  // meta.type is never kHardlink; meta.path is unused
  // kSpool: content in the spool file; kInput: in the (uncompressed, seekable) input file; kFile: read
  // from `file` at write time.
  enum class Source { kNone, kSpool, kInput, kFile } source = Source::kNone;
  uint64_t offset = 0;         // kSpool, kInput: where the content starts
  std::filesystem::path file;  // kFile: read at write time
};

// The canonical tar on its way out. Headers and content are gathered into large blocks; content is read
// once, by file range, straight into a block. Each full block is hashed (the diff_id) and forwarded to `next`
// (the output file or a compressor); the digest is of exactly the bytes forwarded even if a source file
// changes meanwhile. With `hash_thread`, hashing runs on a thread of this object's own while the caller's
// thread forwards the same block, so hashing overlaps writing: right for an uncompressed output, where the
// hash is half the work. Without it the caller's thread hashes each block before forwarding it: right in
// front of a compressor, whose own threads are the bottleneck, since a third thread handing blocks back and
// forth only adds scheduling waits on a loaded machine. Memory: kBlocks blocks of kBlockBytes (one without
// `hash_thread`). One producer thread; not thread-safe.
class TarStream {
 public:
  explicit TarStream(Sink* next, bool hash_thread = true);
  ~TarStream();  // stops and joins the hashing thread, if any
  TarStream(const TarStream&) = delete;
  TarStream& operator=(const TarStream&) = delete;

  Status write(std::string_view bytes);
  // Appends `size` bytes of `fd` from `offset`; bad_input naming `what` when the file is shorter. The read
  // is done before this returns: the descriptor may be closed afterwards.
  Status write_range(int fd, uint64_t offset, uint64_t size, const char* what);
  // Forwards what is still buffered and waits for the hash; the first error of `next`, if any. Does not
  // finish `next`.
  Status finish();
  // "sha256:<hex>" of every byte written, and their count; valid after a successful finish().
  const std::string& digest() const { return digest_; }
  uint64_t size() const { return size_; }

  static constexpr size_t kBlockBytes = size_t{1} << 20;
  static constexpr size_t kBlocks = 8;

 private:
  Status hand_off();  // the filled block: to the hasher, then to `next`; then waits for a free block
  void hash_blocks();

  Sink* next_;
  Status status_;
  std::vector<std::unique_ptr<uint8_t[]>> blocks_;
  size_t lengths_[kBlocks] = {};
  size_t filled_ = 0;  // bytes in the block being filled, blocks_[produced_ % kBlocks]
  uint64_t size_ = 0;
  std::string digest_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t produced_ = 0;  // blocks handed off (guarded by mu_)
  uint64_t hashed_ = 0;    // blocks hashed (guarded by mu_)
  bool closing_ = false;   // no more blocks will come (guarded by mu_)
  Sha256 sha_;             // used by the hashing thread only, until it is joined
  std::thread hasher_;
};

// Paths and nodes of a layer under construction. Memory: one Node and one map entry per path; content lives
// in an unlinked spool file. Not thread-safe.
class LayerPlan {
 public:
  static Result<LayerPlan> create(const LayerOptions& options);

  // Applies the owner and mtime rules of the options to `meta`, counting changes in `summary`.
  void apply_rules(Entry& meta, LayerSummary& summary) const;
  // Appends content to the spool; returns its offset.
  Result<uint64_t> spool(std::string_view bytes);
  Status spool_flush();
  // The file that kInput nodes point into (not owned; must stay open until write() returns).
  void set_input_fd(int fd) { input_fd_ = fd; }
  // Points `path` at a new node (replacing whatever was there: the last entry wins).
  void put(const std::string& path, Node node, LayerSummary& summary);
  // Points `path` at the node `target` points at now. bad_input when `target` is absent or a directory.
  Status link(const std::string& path, const std::string& target, LayerSummary& summary);
  // Writes the canonical tar to `tar_out` in path order: the first path of a hardlink group carries the
  // content, the others link to it. Ends with the two zero blocks. First checks the tree (check_tree), so
  // bad_input leaves `tar_out` untouched.
  Status write(TarStream& tar_out, LayerSummary& summary);
  // bad_input naming both paths when an entry lies under a non-directory: a directory replaced by a file (or
  // link, device…) while entries under it remain, or an entry added under a file. Tar cannot extract either.
  Status check_tree() const;

 private:
  LayerPlan(const LayerOptions& options, TempFile spool) : options_(&options), spool_(std::move(spool)) {}
  Status write_content(const Node& node, TarStream& out);

  const LayerOptions* options_;
  TempFile spool_;
  int input_fd_ = -1;
  uint64_t spool_size_ = 0;
  std::string spool_buffer_;
  std::vector<Node> nodes_;
  std::map<std::string, uint32_t> paths_;  // std::string compares bytewise (unsigned), which is canonical order
};

// Streams `size` bytes at `offset` of `fd` to `out`: small ranges by pread, large ones through windows of a
// private mapping, so content is not copied through an intermediate buffer and memory stays bounded.
Status copy_range(int fd, uint64_t offset, uint64_t size, Sink& out, const char* what);

// Writes the plan through hashing and compression into `out`, filling the digests of `summary`.
Status write_layer(LayerPlan& plan, const LayerOptions& options, Sink& out, LayerSummary& summary);

}  // namespace quorate::normalize::detail
