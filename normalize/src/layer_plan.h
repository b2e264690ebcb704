// The in-memory plan of a canonical layer: one node per inode, paths pointing at nodes, content spooled.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "quorate/core/file.h"
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
  uint64_t offset = 0;       // kSpool, kInput: where the content starts
  std::filesystem::path file;  // kFile: read at write time
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
  Status write(Sink& tar_out, LayerSummary& summary);
  // bad_input naming both paths when an entry lies under a non-directory: a directory replaced by a file (or
  // link, device…) while entries under it remain, or an entry added under a file. Tar cannot extract either.
  Status check_tree() const;

 private:
  LayerPlan(const LayerOptions& options, TempFile spool) : options_(&options), spool_(std::move(spool)) {}
  Status write_content(const Node& node, Sink& out);

  const LayerOptions* options_;
  TempFile spool_;
  int input_fd_ = -1;
  uint64_t spool_size_ = 0;
  std::string spool_buffer_;
  std::vector<Node> nodes_;
  std::map<std::string, uint32_t> paths_;  // std::string compares bytewise (unsigned), which is canonical order
};

// Buffers small writes (tar headers) into large ones.
class BufferedSink final : public Sink {
 public:
  explicit BufferedSink(Sink* next, size_t capacity = 1 << 20) : next_(next), capacity_(capacity) {}
  Status write(std::span<const uint8_t> bytes) override;
  using Sink::write;
  Status finish() override;

 private:
  Sink* next_;
  size_t capacity_;
  std::string buffer_;
};

// Streams `size` bytes at `offset` of `fd` to `out`: small ranges by pread, large ones through windows of a
// private mapping, so content is not copied through an intermediate buffer and memory stays bounded.
Status copy_range(int fd, uint64_t offset, uint64_t size, Sink& out, const char* what);

// Writes the plan through hashing and compression into `out`, filling the digests of `summary`.
Status write_layer(LayerPlan& plan, const LayerOptions& options, Sink& out, LayerSummary& summary);

}  // namespace quorate::normalize::detail
