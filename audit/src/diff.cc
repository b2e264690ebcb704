// Layer and image comparison, the inputs it reads (OCI layouts, OCI tars, docker-archives), diffoscope
// reports on changed files, and the renderings.
#include "quorate/audit/diff.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string_view>
#include <vector>

#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/process.h"
#include "quorate/core/sha256.h"
#include "quorate/core/sha256_file.h"
#include "quorate/core/temporaries.h"
#include "quorate/core/time.h"
#include "quorate/normalize/docker_archive.h"
#include "quorate/normalize/image.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/inspect.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/oci_layout.h"
#include "quorate/normalize/tar_reader.h"

namespace quorate::audit {
namespace {
namespace fs = std::filesystem;

using normalize::EntryType;
using normalize::LayerEntry;

constexpr size_t kMaxReportBytes = 1u << 20;  // a diffoscope report is cut here even within deep_max_lines

const std::set<std::string> kKnownFields = {"content", "created", "link", "mode", "mtime", "owner", "xattrs"};

const char* type_name(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return "file";
    case EntryType::kDirectory:
      return "directory";
    case EntryType::kSymlink:
      return "symlink";
    case EntryType::kHardlink:
      return "hardlink";
    case EntryType::kCharDevice:
      return "char device";
    case EntryType::kBlockDevice:
      return "block device";
    case EntryType::kFifo:
      return "fifo";
  }
  return "unknown";
}

std::string octal(uint32_t mode) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::string xattr_text(const std::map<std::string, std::string>& xattrs) {
  std::string out;
  for (const auto& [k, v] : xattrs) {
    if (!out.empty()) out += ", ";
    out += k + "=" + std::to_string(v.size()) + " bytes";
  }
  return out.empty() ? "(none)" : out;
}

// A layer's entries by path, and for hardlinks the member that stores their bytes (what --deep extracts).
struct LayerIndex {
  std::map<std::string, LayerEntry> entries;
  std::map<std::string, std::string> link_sources;  // hardlink path -> regular-file member
};

// The entries of `layer`; `total`, when not null, counts its content with the other layers' (diff_images).
Result<LayerIndex> index_layer(const fs::path& layer, const DiffOptions& options,
                               normalize::ExpandedTotal* total = nullptr) {
  LayerIndex index;
  auto& entries = index.entries;
  QR_RETURN_IF_ERROR(normalize::read_layer_entries(
      layer,
      [&](LayerEntry&& e) {
        std::string path = e.entry.path;
        index.link_sources.erase(path);
        if (e.entry.type == EntryType::kHardlink) {
          // A hardlink is the file it links to: which path of a group carries the content is not a
          // difference a user cares about.
          auto target = entries.find(e.entry.link_target);
          if (target == entries.end()) {
            return Status::bad_input(layer.string() + ": hardlink \"" + path + "\" points to \"" + e.entry.link_target +
                                     "\", which is not in the layer before it");
          }
          auto source = index.link_sources.find(target->first);
          index.link_sources[path] = source == index.link_sources.end() ? target->first : source->second;
          LayerEntry resolved = target->second;
          resolved.entry.path = path;
          e = std::move(resolved);
        }
        entries.insert_or_assign(std::move(path), std::move(e));  // the last entry for a path wins, as in tar
        return Status();
      },
      options.max_expanded_bytes, total));
  return index;
}

// The archive member that holds the bytes of `path`.
const std::string& source_member(const LayerIndex& index, const std::string& path) {
  auto source = index.link_sources.find(path);
  return source == index.link_sources.end() ? path : source->second;
}

void compare(const LayerEntry& a, const LayerEntry& b, const std::set<std::string>& ignore,
             std::vector<FieldDiff>& out) {
  auto add = [&](const char* field, const char* group, std::string va, std::string vb) {
    if (va != vb && !ignore.count(group)) out.push_back({field, std::move(va), std::move(vb)});
  };
  const auto& x = a.entry;
  const auto& y = b.entry;
  add("type", "type", type_name(x.type), type_name(y.type));
  add("size", "content", std::to_string(x.size), std::to_string(y.size));
  add("content", "content", a.content_digest, b.content_digest);
  add("mode", "mode", octal(x.mode), octal(y.mode));
  add("owner", "owner", std::to_string(x.uid) + ":" + std::to_string(x.gid) + " (" + x.uname + ":" + x.gname + ")",
      std::to_string(y.uid) + ":" + std::to_string(y.gid) + " (" + y.uname + ":" + y.gname + ")");
  add("mtime", "mtime", format_rfc3339(x.mtime), format_rfc3339(y.mtime));
  add("link", "link", x.link_target, y.link_target);
  add("device", "type", std::to_string(x.devmajor) + "," + std::to_string(x.devminor),
      std::to_string(y.devmajor) + "," + std::to_string(y.devminor));
  if (x.xattrs != y.xattrs && !ignore.count("xattrs"))
    out.push_back({"xattrs", xattr_text(x.xattrs), xattr_text(y.xattrs)});
}

const char* kind_name(FileChange::Kind k) {
  switch (k) {
    case FileChange::Kind::kAdded:
      return "added";
    case FileChange::Kind::kRemoved:
      return "removed";
    case FileChange::Kind::kChanged:
      return "changed";
  }
  return "changed";
}

nlohmann::json fields_json(const std::vector<FieldDiff>& fields) {
  auto out = nlohmann::json::array();
  for (const auto& f : fields) out.push_back({{"field", f.field}, {"a", f.a}, {"b", f.b}});
  return out;
}

// How much more one diff may list (kMaxListedDifferences, kMaxListedBytes), shared by all its parts.
class Listing {
 public:
  // Whether one more difference of `bytes` may be kept; once not, no later one may (the list is cut, not
  // thinned).
  bool take(uint64_t bytes) {
    if (full_ || items_ >= kMaxListedDifferences || bytes > kMaxListedBytes - bytes_) {
      full_ = true;
      return false;
    }
    ++items_;
    bytes_ += bytes;
    return true;
  }
  bool full() const { return full_; }

 private:
  size_t items_ = 0;
  uint64_t bytes_ = 0;
  bool full_ = false;
};

uint64_t text_bytes(const FieldDiff& f) { return f.field.size() + f.a.size() + f.b.size(); }

uint64_t change_bytes(const std::string& path, const std::vector<FieldDiff>& fields) {
  uint64_t bytes = path.size();
  for (const auto& f : fields) bytes += text_bytes(f);
  return bytes;
}

// The differences of two entry maps, sorted by path, into `layer` (those past `listing` only counted).
void diff_maps(const std::map<std::string, LayerEntry>& left, const std::map<std::string, LayerEntry>& right,
               const DiffOptions& options, Listing& listing, LayerDiff& layer) {
  auto keep = [&](const std::string& path, FileChange::Kind kind, std::vector<FieldDiff> fields) {
    if (listing.take(change_bytes(path, fields))) {
      layer.changes.push_back({path, kind, std::move(fields)});
    } else {
      ++layer.omitted;
    }
  };
  auto l = left.begin();
  auto r = right.begin();
  while (l != left.end() || r != right.end()) {
    if (r == right.end() || (l != left.end() && l->first < r->first)) {
      keep(l->first, FileChange::Kind::kRemoved, {});
      ++l;
    } else if (l == left.end() || r->first < l->first) {
      keep(r->first, FileChange::Kind::kAdded, {});
      ++r;
    } else {
      std::vector<FieldDiff> fields;
      compare(l->second, r->second, options.ignore, fields);
      if (!fields.empty()) keep(l->first, FileChange::Kind::kChanged, std::move(fields));
      ++l;
      ++r;
    }
  }
}

// ---- reading tar members (for --deep) ----

using normalize::archive_error;
using normalize::TarReader;

// The entry's path as stored (raw header bytes, or the pax UTF-8 name), or "" when it has none.
std::string raw_path(struct archive_entry* ae) {
  const char* p = normalize::raw_path(ae);
  return p ? p : "";
}

// How many bytes members may still take on disk; bad_input once `limit` is passed.
struct Budget {
  uint64_t limit;
  uint64_t used = 0;
  Status take(uint64_t n, const std::string& where) {
    used += n;
    if (used <= limit) return Status();
    return Status::bad_input(where + ": expands to more than the limit of " + std::to_string(limit) + " bytes");
  }
};

// A new file for writing that must not exist yet (and is never followed if it is a link).
Result<int> create_file(const fs::path& p) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::from_errno("create " + p.string(), errno);
  return fd;
}

// Copies the content of the entry `a` is at into `fd` (file `p`), hashing it into `hash` when not null.
Status copy_content(struct archive* a, int fd, const fs::path& p, Sha256* hash, Budget& budget,
                    const std::string& where) {
  std::string buffer(1 << 16, '\0');
  for (;;) {
    la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
    if (n < 0) return archive_error(a, where);
    if (n == 0) return Status();
    std::string_view chunk(buffer.data(), static_cast<size_t>(n));
    QR_RETURN_IF_ERROR(budget.take(chunk.size(), where));
    if (hash) hash->update(chunk);
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
    QR_RETURN_IF_ERROR(write_all(fd, bytes, p.c_str()));
  }
}

// ---- images: the manifest, config and layer files of either side ----

struct ViewLayer {
  std::string digest;  // as the image names the layer
  fs::path file;
};

// One side of a diff, whichever format it came in.
struct ImageView {
  std::string name;                              // the input as given, for messages
  std::unique_ptr<normalize::ImageFiles> files;  // the input's members (a tar's, extracted), kept while the view lives
  nlohmann::json manifest;                       // without the config and layer descriptors, which are explained apart
  nlohmann::json config;
  std::vector<ViewLayer> layers;
};

// An OCI image layout: the image index.json leads to (`platform` picks one of several).
Result<ImageView> open_oci(const normalize::ImageFiles& files, const std::string& platform) {
  auto oci = QR_TRY(normalize::read_oci_layout(files, platform));
  ImageView view;
  view.manifest = std::move(oci.manifest);
  view.config = std::move(oci.config);
  for (auto& layer : oci.layers) view.layers.push_back({std::move(layer.digest), std::move(layer.file)});
  view.manifest.erase("config");
  view.manifest.erase("layers");
  return view;
}

// A docker-archive: manifest.json's one entry names the config and the layer files.
Result<ImageView> open_docker(const normalize::ImageFiles& files) {
  auto images = QR_TRY(normalize::read_docker_archive(files));
  if (images.size() > 1) {
    return Status::unsupported("manifest.json lists " + std::to_string(images.size()) +
                               " images; quorate diff compares one image on each side");
  }
  ImageView view;
  view.manifest = std::move(images[0].entry);  // its other fields are compared
  view.config = std::move(images[0].config);
  for (auto& layer : images[0].layers) view.layers.push_back({std::move(layer.digest), std::move(layer.file)});
  view.manifest.erase("Config");
  view.manifest.erase("Layers");
  return view;
}

// Every layer file of `view` hashed against the digest the image names it by, each file once however often
// it is listed: layers whose digests match on both sides are not compared, so a blob that is not what its
// digest says would pass for the one that is (a layout whose layer blob had been replaced was "identical").
Status check_layer_digests(const ImageView& view) {
  std::map<fs::path, std::string> hashed;
  for (size_t i = 0; i < view.layers.size(); ++i) {
    const ViewLayer& layer = view.layers[i];
    auto known = hashed.find(layer.file);
    if (known == hashed.end()) known = hashed.emplace(layer.file, QR_TRY(sha256_file_digest(layer.file))).first;
    if (known->second != layer.digest) {
      return Status::bad_input("layer " + std::to_string(i) + " (" + layer.digest + ") does not match its digest (" +
                               layer.file.string() + " holds " + known->second + ")");
    }
  }
  return Status();
}

// Either side of a diff, its format told by content; a tar is extracted first, and every layer hashed.
Result<ImageView> open_image(const fs::path& input, const DiffOptions& options) {
  using normalize::ImageFormat;
  auto format = QR_TRY(normalize::detect_image_format(input));
  if (format == ImageFormat::kNotImage) {
    return Status::bad_input(input.string() + " is not an OCI image layout, an OCI layout tar or a docker-archive");
  }
  std::string what = input.string() + " (" + normalize::image_format_name(format) + ")";
  auto files = format == ImageFormat::kOciLayout
                   ? normalize::ImageFiles::open_dir(input)
                   : normalize::ImageFiles::extract(input, options.temp_dir, options.max_expanded_bytes);
  if (!files.ok()) return files.status().with_context(what);
  auto view = format == ImageFormat::kDockerArchive ? open_docker(**files) : open_oci(**files, options.platform);
  if (!view.ok()) return view.status().with_context(what);
  if (options.progress) options.progress(input.string() + ": checking the layers' digests");
  if (Status s = check_layer_digests(*view); !s.ok()) return s.with_context(what);
  view->name = input.string();
  view->files = std::move(*files);
  return view;
}

// ---- --deep: diffoscope on the two versions of each changed file ----

// One version of a changed file, to be copied out of its layer.
struct Version {
  std::string member;  // the archive member holding its bytes (a hardlink's source)
  std::string digest;  // what they hash to: a path may occur more than once in a tar
  fs::path dest;
  bool done = false;
};

// Copies every version out of `layer` in one pass: a member named by one is spooled while hashed, then
// linked to the destination of each version whose digest it has.
Status extract_versions(const fs::path& layer, std::vector<Version>& versions, const fs::path& spool,
                        uint64_t max_bytes) {
  TarReader reader = QR_TRY(TarReader::open(layer));
  Budget budget{max_bytes};
  auto pending = [&] { return std::ranges::count_if(versions, [](const Version& v) { return !v.done; }); };
  while (pending() > 0) {
    struct archive_entry* ae = QR_TRY(reader.next(layer.string()));
    if (ae == nullptr) break;
    if (archive_entry_hardlink(ae) != nullptr || archive_entry_filetype(ae) != AE_IFREG) continue;
    auto name = normalize::canonical_path(raw_path(ae));
    if (!name.ok() || std::ranges::none_of(versions, [&](const Version& v) { return !v.done && v.member == *name; })) {
      continue;
    }
    int fd = QR_TRY(create_file(spool));
    Sha256 hash;
    Status copied = copy_content(reader.archive(), fd, spool, &hash, budget, layer.string() + ": " + *name);
    ::close(fd);
    QR_RETURN_IF_ERROR(copied);
    std::string digest = hash.finish_digest();
    for (auto& v : versions) {
      if (v.done || v.member != *name || v.digest != digest) continue;
      if (::link(spool.c_str(), v.dest.c_str()) != 0) return Status::from_errno("link " + v.dest.string(), errno);
      v.done = true;
    }
    ::unlink(spool.c_str());
  }
  if (pending() > 0) return Status::bad_input(layer.string() + " changed while it was being compared");
  return Status();
}

// Runs `program --text - a/NAME b/NAME` in `dir` (in its own process group, so that a kill reaches the tools
// diffoscope starts), reading at most deep_max_lines lines or kMaxReportBytes; io when it cannot be started.
Result<ProcessResult> run_diffoscope(const fs::path& program, const fs::path& dir, const std::string& name,
                                     const DiffOptions& options) {
  ProcessSpec spec;
  spec.argv = {program.string(), "--text", "-", "a/" + name, "b/" + name};
  spec.cwd = dir;
  spec.max_output_lines = options.deep_max_lines;
  spec.max_output_bytes = kMaxReportBytes;
  spec.deadline = std::chrono::steady_clock::now() + options.deep_timeout;
  return run_process(spec);
}

// The report kept in FileChange::deep: at most deep_max_lines lines, then a line for anything unusual.
std::string deep_report(const ProcessResult& run, const DiffOptions& options) {
  const bool timed_out = run.ending == ProcessEnding::kTimedOut;
  std::string text = run.output;
  size_t end = 0;
  for (size_t lines = 0; lines < options.deep_max_lines && end < text.size(); ++lines) {
    size_t nl = text.find('\n', end);
    end = nl == std::string::npos ? text.size() : nl + 1;
  }
  bool cut = run.ending == ProcessEnding::kOutputCut || end < text.size();
  text.resize(std::min(end, kMaxReportBytes));
  if (!text.empty() && text.back() != '\n') text += '\n';
  if (end > kMaxReportBytes) {
    text += "[report cut at " + std::to_string(kMaxReportBytes) + " bytes]\n";
  } else if (cut) {
    text += "[report cut after " + std::to_string(options.deep_max_lines) + " lines]\n";
  }
  if (timed_out) {
    text += "[diffoscope still ran after " + std::to_string(options.deep_timeout.count()) + " s and was killed]\n";
  } else if (!cut && WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) > 1) {
    text += "[diffoscope failed: exit status " + std::to_string(WEXITSTATUS(run.wait_status)) + "]\n";
  } else if (!cut && WIFSIGNALED(run.wait_status)) {
    text += "[diffoscope was killed by signal " + std::to_string(WTERMSIG(run.wait_status)) + "]\n";
  }
  return text.empty() ? "[diffoscope printed nothing]\n" : text;
}

bool content_changed(const FileChange& c, const LayerIndex& a, const LayerIndex& b) {
  if (c.kind != FileChange::Kind::kChanged) return false;
  bool content = std::ranges::any_of(c.fields, [](const FieldDiff& f) { return f.field == "content"; });
  return content && a.entries.at(c.path).entry.type == EntryType::kFile &&
         b.entries.at(c.path).entry.type == EntryType::kFile;
}

// With options.diffoscope, fills FileChange::deep for each regular file of `diff` whose content changed:
// both versions are copied into <temp>/<n>/a/NAME and <temp>/<n>/b/NAME, so reports name a/NAME and b/NAME.
Status explain_content(LayerDiff& diff, const LayerIndex& a, const fs::path& a_file, const LayerIndex& b,
                       const fs::path& b_file, const DiffOptions& options) {
  if (options.diffoscope.empty()) return Status();
  std::vector<FileChange*> changed;
  for (auto& c : diff.changes) {
    if (content_changed(c, a, b)) changed.push_back(&c);
  }
  if (changed.empty()) return Status();
  auto temp = QR_TRY(TempDir::create(temp_parent(options.temp_dir), "quorate-diff."));
  std::vector<Version> va, vb;
  std::vector<std::string> names;
  for (size_t i = 0; i < changed.size(); ++i) {
    const std::string& path = changed[i]->path;
    names.push_back(path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1));
    fs::path dir = temp.path() / std::to_string(i);
    for (const char* side : {"a", "b"}) {
      std::error_code ec;
      fs::create_directories(dir / side, ec);
      if (ec) return Status::io("create " + (dir / side).string() + ": " + ec.message());
    }
    va.push_back({source_member(a, path), a.entries.at(path).content_digest, dir / "a" / names.back()});
    vb.push_back({source_member(b, path), b.entries.at(path).content_digest, dir / "b" / names.back()});
  }
  QR_RETURN_IF_ERROR(extract_versions(a_file, va, temp.path() / "spool", options.max_expanded_bytes));
  QR_RETURN_IF_ERROR(extract_versions(b_file, vb, temp.path() / "spool", options.max_expanded_bytes));
  for (size_t i = 0; i < changed.size(); ++i) {
    if (options.progress) {
      options.progress("diffoscope " + std::to_string(i + 1) + "/" + std::to_string(changed.size()) + ": " +
                       changed[i]->path);
    }
    auto run = QR_TRY(run_diffoscope(options.diffoscope, temp.path() / std::to_string(i), names[i], options));
    changed[i]->deep = deep_report(run, options);
  }
  return Status();
}

bool is_time_field(const std::string& pointer) {
  return pointer == "/created" ||
         (pointer.rfind("/history/", 0) == 0 && pointer.size() > 8 && pointer.substr(pointer.size() - 8) == "/created");
}

// The differing leaves of two JSON documents by JSON pointer, in pointer order: a leaf is a scalar or an
// empty array or object, and a subtree on one side only is its leaves against "(absent)". The tree is walked
// with one pointer string grown and cut as it goes: flattening it first made a string of each leaf's whole
// pointer, and a long key over a long array is terabytes of them. Leaves past `listing` are only counted.
class JsonDiff {
 public:
  JsonDiff(bool skip_times, Listing& listing, std::vector<FieldDiff>& out, size_t& omitted)
      : skip_times_(skip_times), listing_(listing), out_(out), omitted_(omitted) {}

  void run(const nlohmann::json& a, const nlohmann::json& b) {
    walk(&a, &b);
    std::ranges::sort(out_, {}, &FieldDiff::field);
  }

 private:
  static bool is_branch(const nlohmann::json* v) { return v && v->is_structured() && !v->empty(); }

  // `a` or `b` is null where that side has nothing at this pointer.
  void walk(const nlohmann::json* a, const nlohmann::json* b) {
    if (is_branch(a) && is_branch(b) && a->type() == b->type()) return children(a, b);
    const nlohmann::json* leaf_a = is_branch(a) ? nullptr : a;
    const nlohmann::json* leaf_b = is_branch(b) ? nullptr : b;
    if ((leaf_a || leaf_b) && !(leaf_a && leaf_b && *leaf_a == *leaf_b)) leaf(leaf_a, leaf_b);
    if (is_branch(a)) children(a, nullptr);
    if (is_branch(b)) children(nullptr, b);
  }

  void children(const nlohmann::json* a, const nlohmann::json* b) {
    const size_t at = pointer_.size();
    if ((a ? a : b)->is_array()) {
      const size_t n = std::max(a ? a->size() : 0, b ? b->size() : 0);
      for (size_t i = 0; i < n; ++i) {
        pointer_ += "/" + std::to_string(i);
        walk(a && i < a->size() ? &(*a)[i] : nullptr, b && i < b->size() ? &(*b)[i] : nullptr);
        pointer_.resize(at);
      }
      return;
    }
    std::set<std::string_view> keys;  // both sides' keys, each once, in order
    for (const auto* side : {a, b}) {
      if (side == nullptr) continue;
      for (const auto& [key, value] : side->items()) keys.insert(key);
    }
    for (std::string_view key : keys) {
      pointer_ += '/';
      for (char c : key) pointer_ += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);  // RFC 6901
      auto find = [&](const nlohmann::json* side) -> const nlohmann::json* {
        if (side == nullptr) return nullptr;
        auto it = side->find(key);
        return it == side->end() ? nullptr : &*it;
      };
      walk(find(a), find(b));
      pointer_.resize(at);
    }
  }

  void leaf(const nlohmann::json* a, const nlohmann::json* b) {
    if (skip_times_ && is_time_field(pointer_)) return;
    if (listing_.full()) {
      ++omitted_;
      return;
    }
    FieldDiff f{pointer_, a ? a->dump() : "(absent)", b ? b->dump() : "(absent)"};
    if (listing_.take(text_bytes(f))) {
      out_.push_back(std::move(f));
    } else {
      ++omitted_;
    }
  }

  bool skip_times_;
  Listing& listing_;
  std::vector<FieldDiff>& out_;
  size_t& omitted_;
  std::string pointer_;
};

// `earlier`'s changes again as those of layer `index` (the same pair of layers listed again), within `listing`.
LayerDiff relist(const LayerDiff& earlier, size_t index, Listing& listing) {
  LayerDiff layer{index, earlier.a_digest, earlier.b_digest, {}, earlier.omitted};
  for (const auto& c : earlier.changes) {
    if (listing.take(change_bytes(c.path, c.fields))) {
      layer.changes.push_back(c);
    } else {
      ++layer.omitted;
    }
  }
  return layer;
}

// The entries of layer `i` of `view`, its content counted in `total`; errors name the image and the layer.
Result<LayerIndex> index_side(const ImageView& view, size_t i, const DiffOptions& options,
                              normalize::ExpandedTotal& total) {
  auto index = index_layer(view.layers[i].file, options, &total);
  if (!index.ok()) return index.status().with_context(view.name + " layer " + std::to_string(i));
  return index;
}

}  // namespace

Result<ImageDiff> diff_images(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options) {
  QR_RETURN_IF_ERROR(check_ignore(options.ignore));
  try {
    auto left = QR_TRY(open_image(a, options));
    auto right = QR_TRY(open_image(b, options));
    ImageDiff diff;
    Listing listing;
    JsonDiff(false, listing, diff.manifest, diff.manifest_omitted).run(left.manifest, right.manifest);
    // rootfs.diff_ids repeat what the layer comparison says file by file.
    for (auto* config : {&left.config, &right.config}) {
      if (auto rootfs = config->find("rootfs"); rootfs != config->end() && rootfs->is_object()) {
        rootfs->erase("diff_ids");
      }
    }
    JsonDiff(options.ignore.count("created") > 0, listing, diff.config, diff.config_omitted)
        .run(left.config, right.config);

    // Pairs of layer digests compared so far, and where in diff.layers their differences are (none: npos).
    // The digests were checked, so a pair listed again differs the same way and is not read again: one small
    // layer that expands a lot, listed 128 times on each side, was read 128 times.
    std::map<std::pair<std::string, std::string>, size_t> compared;
    // What the layers compared expand to, both images' together, counted as they are read: 128 distinct small
    // layers that each expand to just under the per-layer limit took 128 times its time.
    normalize::ExpandedTotal total(std::max(options.max_total_expanded_bytes, options.max_expanded_bytes),
                                   "the layers of both images");
    size_t count = std::max(left.layers.size(), right.layers.size());
    for (size_t i = 0; i < count; ++i) {
      bool in_a = i < left.layers.size(), in_b = i < right.layers.size();
      std::string da = in_a ? left.layers[i].digest : "", db = in_b ? right.layers[i].digest : "";
      if (in_a && in_b && da == db) continue;
      auto [seen, first] = compared.try_emplace({da, db}, std::string::npos);
      if (!first) {
        if (seen->second != std::string::npos) diff.layers.push_back(relist(diff.layers[seen->second], i, listing));
        continue;
      }
      if (options.progress)
        options.progress("layer " + std::to_string(i + 1) + "/" + std::to_string(count) + ": reading");
      LayerIndex ia, ib;
      if (in_a) ia = QR_TRY(index_side(left, i, options, total));
      if (in_b) ib = QR_TRY(index_side(right, i, options, total));
      LayerDiff layer{i, da, db, {}};
      diff_maps(ia.entries, ib.entries, options, listing, layer);
      if (in_a && in_b) {
        QR_RETURN_IF_ERROR(explain_content(layer, ia, left.layers[i].file, ib, right.layers[i].file, options));
      }
      if (!layer.changes.empty() || layer.omitted > 0 || !in_a || !in_b) {
        seen->second = diff.layers.size();
        diff.layers.push_back(std::move(layer));
      }
    }
    return diff;
  } catch (const std::exception& e) {  // std::filesystem and nlohmann throw; nothing escapes the module
    return Status::internal("diff " + a.string() + " " + b.string() + ": " + e.what());
  }
}

Result<std::filesystem::path> find_diffoscope(std::string_view search_path) {
  if (auto found = find_program("diffoscope", search_path)) return *found;
  return Status::usage("diffoscope is not installed (no executable diffoscope in any directory of PATH)");
}

Status check_ignore(const std::set<std::string>& ignore) {
  for (const auto& name : ignore) {
    if (!kKnownFields.count(name)) {
      return Status::usage("cannot ignore \"" + name +
                           "\": known fields are content, created, link, mode, mtime, "
                           "owner, xattrs");
    }
  }
  return Status();
}

Result<LayerDiff> diff_layers(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options) {
  QR_RETURN_IF_ERROR(check_ignore(options.ignore));
  auto left = QR_TRY(index_layer(a, options));
  auto right = QR_TRY(index_layer(b, options));
  LayerDiff diff;
  Listing listing;
  diff_maps(left.entries, right.entries, options, listing, diff);
  QR_RETURN_IF_ERROR(explain_content(diff, left, a, right, b, options));
  return diff;
}

nlohmann::json to_json(const ImageDiff& diff) {
  nlohmann::json out;
  out["identical"] = diff.identical();
  out["manifest"] = fields_json(diff.manifest);
  out["config"] = fields_json(diff.config);
  out["manifest_omitted"] = diff.manifest_omitted;
  out["config_omitted"] = diff.config_omitted;
  out["layers"] = nlohmann::json::array();
  for (const auto& layer : diff.layers) {
    nlohmann::json l{
        {"index", layer.index}, {"a_digest", layer.a_digest}, {"b_digest", layer.b_digest}, {"omitted", layer.omitted}};
    l["changes"] = nlohmann::json::array();
    for (const auto& c : layer.changes) {
      nlohmann::json change{{"path", c.path}, {"kind", kind_name(c.kind)}, {"fields", fields_json(c.fields)}};
      if (!c.deep.empty()) change["deep"] = c.deep;
      l["changes"].push_back(std::move(change));
    }
    out["layers"].push_back(std::move(l));
  }
  return out;
}

std::string to_text(const ImageDiff& diff) {
  // Every field, path and value comes from the images (and diffoscope reads their files): masked, so that a
  // file named "\x1b[2J…" cannot drive the reader's terminal.
  std::ostringstream out;
  if (diff.identical()) {
    out << "images are identical\n";
    return out.str();
  }
  const auto field_line = [&](std::string_view indent, const FieldDiff& f) {
    out << indent << mask_control(f.field) << ": " << mask_control(f.a) << " -> " << mask_control(f.b) << "\n";
  };
  const auto omitted_line = [&](std::string_view indent, size_t n, std::string_view what) {
    if (n > 0)
      out << indent << n << " more " << what << " not listed (the diff lists at most " << kMaxListedDifferences
          << " differences, " << kMaxListedBytes << " bytes of them)\n";
  };
  for (const auto& f : diff.manifest) field_line("manifest ", f);
  omitted_line("manifest: ", diff.manifest_omitted, "differing fields");
  for (const auto& f : diff.config) field_line("config ", f);
  omitted_line("config: ", diff.config_omitted, "differing fields");
  for (const auto& layer : diff.layers) {
    out << "layer " << layer.index << " (" << (layer.a_digest.empty() ? "absent" : mask_control(layer.a_digest))
        << " -> " << (layer.b_digest.empty() ? "absent" : mask_control(layer.b_digest)) << ")\n";
    for (const auto& c : layer.changes) {
      out << "  " << kind_name(c.kind) << " " << mask_control(c.path) << "\n";
      for (const auto& f : c.fields) field_line("      ", f);
      if (c.deep.empty()) continue;
      out << "      diffoscope:\n";
      std::istringstream lines(c.deep);
      for (std::string line; std::getline(lines, line);) out << "        " << mask_control(line) << "\n";
    }
    omitted_line("  ", layer.omitted, "changes");
  }
  return out.str();
}

}  // namespace quorate::audit
