// ImageStore: an OCI layout directory that holds imported images byte for byte, verified against the pin.
#include "quorate/imagestore/image_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/core/sha256_file.h"
#include "quorate/core/temporaries.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/image.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/oci.h"
#include "store_internal.h"

namespace quorate::imagestore {
namespace fs = std::filesystem;
using nlohmann::json;

namespace internal {

fs::path blob_path(const fs::path& store, const std::string& digest) {
  return store / "blobs" / "sha256" / digest_hex(digest);
}

fs::path temp_dir(const fs::path& store) { return store / "tmp"; }

Result<FileLock> FileLock::acquire(const fs::path& path, LockMode mode, const std::string& busy_what) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::from_errno("open lock " + path.string(), errno);
  int op = mode == LockMode::kShared ? LOCK_SH : LOCK_EX;
  if (mode == LockMode::kExclusiveIfFree) op |= LOCK_NB;
  while (::flock(fd, op) != 0) {
    int e = errno;
    if (e == EINTR) continue;
    ::close(fd);
    if (e == EWOULDBLOCK) return Status::bad_input(busy_what + " is in use (" + path.string() + " is locked)");
    return Status::from_errno("lock " + path.string(), e);
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

fs::path verified_record(const fs::path& store, const std::string& digest) {
  return store / "verified" / digest_hex(digest);
}

std::string stat_line(const fs::path& blob, struct stat* st) {
  if (::stat(blob.c_str(), st) != 0) return "";
  char line[192];
  std::snprintf(line, sizeof line, "dev=%ju ino=%ju size=%jd mtime=%jd.%09ld ctime=%jd.%09ld\n",
                static_cast<uintmax_t>(st->st_dev), static_cast<uintmax_t>(st->st_ino),
                static_cast<intmax_t>(st->st_size), static_cast<intmax_t>(st->st_mtim.tv_sec), st->st_mtim.tv_nsec,
                static_cast<intmax_t>(st->st_ctim.tv_sec), st->st_ctim.tv_nsec);
  return line;
}

}  // namespace

std::optional<normalize::LayerBlobDigests> verified_layer(const fs::path& store, const std::string& digest,
                                                          const fs::path& blob) {
  struct stat st {};
  std::string now = stat_line(blob, &st);
  if (now.empty()) return std::nullopt;
  auto was = read_file(verified_record(store, digest), 512);
  if (!was.ok() || !was->starts_with(now)) return std::nullopt;
  // "diff_id=sha256:<64 hex> expanded=<decimal>\n" after the stat line
  std::string_view rest = std::string_view(*was).substr(now.size());
  constexpr size_t kDiffId = 8 + 71;
  if (!rest.starts_with("diff_id=") || rest.size() < kDiffId || !rest.ends_with('\n')) return std::nullopt;
  normalize::LayerBlobDigests out;
  out.digest = digest;
  out.diff_id = std::string(rest.substr(8, 71));
  std::string_view size = rest.substr(kDiffId, rest.size() - kDiffId - 1);
  if (!check_digest(out.diff_id).ok() || !size.starts_with(" expanded=")) return std::nullopt;
  size.remove_prefix(10);
  auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), out.expanded);
  if (ec != std::errc() || end != size.data() + size.size() || size.empty()) return std::nullopt;
  return out;
}

Result<normalize::LayerBlobDigests> hash_layer_blob(const fs::path& store, const std::string& digest,
                                                    const fs::path& blob, uint64_t max_expanded,
                                                    normalize::ExpandedTotal& together) {
  std::error_code ec;
  fs::create_directories(store / "verified", ec);
  auto record = AtomicFile::create(verified_record(store, digest), 0644);
  struct stat started {};  // the record's temporary, made now: its mtime is the hash's start on the fs clock
  struct stat st {};
  bool can_record = record.ok() && ::stat((*record)->temp_path().c_str(), &started) == 0;
  std::string before = stat_line(blob, &st);
  can_record = can_record && !before.empty() && started.st_mtim.tv_sec >= st.st_ctim.tv_sec + 2;
  auto actual = QR_TRY(normalize::layer_blob_digests(blob, digest, max_expanded, &together));
  const std::string line = before + "diff_id=" + actual.diff_id + " expanded=" + std::to_string(actual.expanded) + "\n";
  if (can_record && stat_line(blob, &st) == before &&
      (*record)->write(std::span(reinterpret_cast<const uint8_t*>(line.data()), line.size())).ok()) {
    (void)(*record)->commit();
  }
  return actual;
}

void forget_verified(const fs::path& store, const std::string& digest) {
  std::error_code ec;
  fs::remove(verified_record(store, digest), ec);
}

Result<json> parse_json(const std::string& bytes, const std::string& what) {
  QR_RETURN_IF_ERROR(check_json_depth(bytes, what));
  try {
    return json::parse(bytes);
  } catch (const json::exception& e) {
    return Status::bad_input(what + " is not JSON: " + e.what());
  }
}

Status copy_blob(const fs::path& store, const fs::path& src, const std::string& digest, const std::string& what,
                 std::optional<uint64_t> size) {
  if (!check_digest(digest).ok()) return Status::bad_input(what + " has a malformed digest");
  fs::path target = blob_path(store, digest);
  std::error_code ec;
  if (size) {
    uint64_t actual = fs::file_size(src, ec);
    if (ec) return Status::io(what + ": " + src.string() + ": " + ec.message());
    if (actual != *size) {
      return Status::bad_input(what + ": blob " + src.string() + " is " + std::to_string(actual) +
                               " bytes; its descriptor says " + std::to_string(*size));
    }
  }
  if (fs::exists(target, ec)) {
    auto have = QR_TRY(sha256_file_digest(target));
    if (have == digest) return Status();
  }
  // A sparse source (fewer blocks than its size: a few KB can declare gigabytes) is hashed before a byte is
  // copied: its holes cost no disk to read, and a wrong one never fills the store's file system with zeros
  // for its digest to be refused at the end. Any other source is hashed while it is copied, read once.
  struct stat st {};
  if (::stat(src.c_str(), &st) == 0 &&
      static_cast<uint64_t>(st.st_blocks) * 512 + (uint64_t{1} << 20) < static_cast<uint64_t>(st.st_size)) {
    std::string actual = QR_TRY(sha256_file_digest(src));
    if (actual != digest) {
      return Status::bad_input(what + ": blob " + src.string() + " holds " + actual + ", not its digest " + digest);
    }
  }
  auto out = QR_TRY(AtomicFile::create(target, 0444));
  int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + src.string(), errno);
  Sha256 hash;
  std::vector<uint8_t> buf(1 << 20);
  Status s;
  while (s.ok()) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) s = Status::from_errno("read " + src.string(), errno);
    if (n <= 0) break;
    std::span<const uint8_t> chunk(buf.data(), static_cast<size_t>(n));
    hash.update(chunk);
    s = out->write(chunk);
  }
  ::close(fd);
  QR_RETURN_IF_ERROR(s);
  std::string actual = hash.finish_digest();
  if (actual != digest) {
    return Status::bad_input(what + ": blob " + src.string() + " holds " + actual + ", not its digest " + digest);
  }
  return out->commit();
}

Result<std::set<std::string>> blobs_of(const fs::path& store, const std::string& digest) {
  std::set<std::string> out = {digest};
  auto bytes = QR_TRY(read_file(blob_path(store, digest), kMaxJsonBytes));
  auto manifest = QR_TRY(parse_json(bytes, "manifest " + digest));
  auto parsed = QR_TRY(normalize::parse_image_manifest(manifest, "manifest " + digest));
  out.insert(parsed.config.digest);
  for (const auto& l : parsed.layers) out.insert(l.digest);
  return out;
}

namespace {

// When this process started (near enough: when its static objects were made).
const fs::file_time_type g_started = fs::file_time_type::clock::now();

// Every blob the store's index lists (each image's manifest, config and layers); nullopt when the index, or
// a manifest it lists, cannot be read.
std::optional<std::set<std::string>> listed_blobs(const fs::path& store) {
  auto index = read_index(store);
  if (!index.ok()) return std::nullopt;
  auto images = images_of(*index, index_name(store));
  if (!images.ok()) return std::nullopt;
  std::set<std::string> listed;
  for (const auto& i : *images) {
    auto blobs = blobs_of(store, i.digest);
    if (!blobs.ok()) return std::nullopt;
    listed.insert(blobs->begin(), blobs->end());
  }
  return listed;
}

// What an import or pull killed by SIGKILL (or a crash) left in blobs/sha256/, which no handler removed: the
// blobs no index entry lists and the hidden `.HEX.tmp.*` copies, each older than this process. Called
// under the store lock, which every writer of blobs/sha256/ holds while it writes: no import is running, so
// an unlisted blob is no running import's. Nothing when the index or a manifest it lists cannot be read.
void remove_leftovers(const fs::path& store) {
  const fs::path dir = store / "blobs" / "sha256";
  std::optional<std::set<std::string>> listed;
  bool read = false;
  std::error_code ec;
  std::vector<std::pair<fs::path, bool>> doomed;  // the path, and whether it is a blob
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool blob = check_digest("sha256:" + name).ok();
    if (!blob && !(name.starts_with(".") && name.find(".tmp.") != std::string::npos)) continue;
    std::error_code time_ec;
    auto mtime = fs::last_write_time(it->path(), time_ec);
    if (time_ec || mtime >= g_started) continue;
    if (blob) {
      if (!read) {  // read once, and only when an old unlisted-looking blob is there
        listed = listed_blobs(store);
        read = true;
      }
      if (!listed || listed->count("sha256:" + name)) continue;
    }
    doomed.emplace_back(it->path(), blob);
  }
  for (const auto& [path, blob] : doomed) {
    if (blob) forget_verified(store, "sha256:" + path.filename().string());
    fs::remove(path, ec);
  }
}

}  // namespace

NewBlobs::NewBlobs(const fs::path& store) : store_(store) {
  try {
    remove_leftovers(store_);
  } catch (const std::exception&) {  // std::filesystem and nlohmann throw; then nothing more is removed
  }
  std::error_code ec;
  for (fs::directory_iterator it(store_ / "blobs" / "sha256", ec), end; !ec && it != end; it.increment(ec))
    before_.insert(it->path().filename().string());
  undo_ = add_interrupt_undo([this] { remove_added(); });
}

NewBlobs::~NewBlobs() {
  // Removed before the undo is dropped: an interrupt meanwhile removes them too, and the process dies only
  // once they are gone, whichever thread gets there first.
  if (!keep_) remove_added();
  remove_interrupt_undo(undo_);
}

void NewBlobs::remove_added() const noexcept {
  try {
    std::error_code ec;
    std::vector<fs::path> added;
    for (fs::directory_iterator it(store_ / "blobs" / "sha256", ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!before_.count(name) && check_digest("sha256:" + name).ok()) added.push_back(it->path());
    }
    if (added.empty()) return;
    // What the index lists stays: an import interrupted after it wrote the index has succeeded but for the
    // word. Nothing is removed when the index, or a manifest it lists, cannot be read.
    auto listed = listed_blobs(store_);
    if (!listed) return;
    for (const auto& p : added) {
      if (!listed->count("sha256:" + p.filename().string())) fs::remove(p, ec);
    }
  } catch (const std::exception&) {  // std::filesystem and nlohmann throw; then nothing more is removed
  }
}

Result<std::string> write_blob(const fs::path& store, const std::string& bytes) {
  std::string digest = sha256_digest(bytes);
  std::error_code ec;
  fs::path target = blob_path(store, digest);
  if (fs::exists(target, ec)) {
    auto have = sha256_file_digest(target);
    if (have.ok() && *have == digest) return digest;
  }
  QR_RETURN_IF_ERROR(write_file_atomic(target, bytes, 0444));
  return digest;
}

Result<std::vector<StoredImage>> images_of(const json& index, const std::string& where) {
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
    return Status::bad_input(where + " has no \"manifests\" array");
  }
  std::vector<StoredImage> out;
  for (size_t i = 0; i < index["manifests"].size(); ++i) {
    auto d =
        QR_TRY(normalize::parse_descriptor(index["manifests"][i], where + ": manifests[" + std::to_string(i) + "]"));
    StoredImage s;
    s.digest = d.digest;
    s.size = d.size;
    s.media_type = d.media_type;
    if (auto ref = d.annotations.find(normalize::kRefNameAnnotation); ref != d.annotations.end()) {
      s.ref_name = ref->second;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string index_name(const fs::path& store) { return "image store index " + (store / "index.json").string(); }

Result<json> read_index(const fs::path& store) {
  auto bytes = read_file(store / "index.json", kMaxJsonBytes);
  if (!bytes.ok() && bytes.status().is_not_found()) return json{{"schemaVersion", 2}, {"manifests", json::array()}};
  if (!bytes.ok()) return bytes.status();
  return parse_json(*bytes, index_name(store));
}

Status write_index(const fs::path& store, const json& index) {
  auto bytes = QR_TRY(canonical_json(index, "image store index"));
  return write_file_atomic(store / "index.json", bytes, 0644);
}

}  // namespace internal

namespace {

using internal::blob_path;
using internal::FileLock;
using internal::kMaxJsonBytes;
using internal::parse_json;
using internal::read_index;

constexpr size_t kMaxManifests = 1000;

// One manifest of the source layout, copied with its config and layers.
// `copied`: the blobs this import has copied or found already, each hashed once however often it is listed.
Result<StoredImage> import_manifest(const fs::path& store, const normalize::ImageFiles& files,
                                    const normalize::Descriptor& desc, const std::string& source,
                                    std::set<std::string>& copied) {
  const std::string& digest = desc.digest;
  if (desc.media_type == normalize::kMediaTypeIndex || desc.media_type == normalize::kMediaTypeDockerManifestList) {
    return Status::unsupported(source + ": index.json lists a nested index " + digest +
                               "; import one platform's image layout");
  }
  auto what = source + " manifest " + digest;
  // A manifest and a config are read whole as JSON: one its descriptor makes larger is refused before a byte
  // is copied (the copy checks the digest only at its end).
  auto too_large = [](const std::string& it, uint64_t size) {
    return Status::bad_input(it + " is " + std::to_string(size) + " bytes; JSON from outside is at most " +
                             std::to_string(kMaxJsonBytes));
  };
  if (desc.size > kMaxJsonBytes) return too_large(what, desc.size);
  auto src = QR_TRY(files.path_of("blobs/sha256/" + digest_hex(digest), what));
  QR_RETURN_IF_ERROR(internal::copy_blob(store, src, digest, what, desc.size));
  auto bytes = QR_TRY(read_file(blob_path(store, digest), kMaxJsonBytes));
  auto manifest = QR_TRY(parse_json(bytes, what));
  auto parsed = QR_TRY(normalize::parse_image_manifest(manifest, what));
  if (parsed.config.size > kMaxJsonBytes)
    return too_large(source + " config " + parsed.config.digest, parsed.config.size);
  std::vector<normalize::Descriptor> blobs = {parsed.config};
  blobs.insert(blobs.end(), parsed.layers.begin(), parsed.layers.end());
  for (const auto& b : blobs) {
    auto path = QR_TRY(files.path_of("blobs/sha256/" + digest_hex(b.digest), what));
    if (copied.count(b.digest)) {  // its size is checked at each listing, its bytes once
      std::error_code ec;
      const uint64_t actual = fs::file_size(path, ec);
      if (ec) return Status::io(source + " blob " + b.digest + ": " + path.string() + ": " + ec.message());
      QR_RETURN_IF_ERROR(normalize::check_blob_size(actual, b.size, source, b.digest));
      continue;
    }
    QR_RETURN_IF_ERROR(internal::copy_blob(store, path, b.digest, source + " blob " + b.digest, b.size));
    copied.insert(b.digest);
  }
  StoredImage out;
  out.digest = digest;
  out.size = bytes.size();
  out.media_type = parsed.media_type.empty() ? desc.media_type : parsed.media_type;
  if (auto ref = desc.annotations.find(normalize::kRefNameAnnotation); ref != desc.annotations.end()) {
    out.ref_name = ref->second;
  }
  return out;
}

Result<std::string> verified_bytes(const fs::path& store, const std::string& digest, const std::string& what) {
  fs::path path = blob_path(store, digest);
  auto bytes = read_file(path, kMaxJsonBytes);
  if (!bytes.ok()) return bytes.status().with_context(what);
  std::string actual = sha256_digest(*bytes);
  if (actual != digest) {
    return Status::bad_input(what + ": image store blob " + path.string() + " holds " + actual + ", not the pinned " +
                             digest);
  }
  return bytes;
}

}  // namespace

namespace internal {

Status add_to_index(const fs::path& store, const std::vector<StoredImage>& images) {
  auto index = QR_TRY(read_index(store));
  std::set<std::string> have;
  for (const auto& s : QR_TRY(internal::images_of(index, index_name(store)))) have.insert(s.digest);
  for (const auto& image : images) {
    if (!have.insert(image.digest).second) continue;
    std::string media_type = image.media_type.empty() ? normalize::kMediaTypeManifest : image.media_type;
    json d = {{"mediaType", media_type}, {"digest", image.digest}, {"size", image.size}};
    if (!image.ref_name.empty()) d["annotations"] = {{normalize::kRefNameAnnotation, image.ref_name}};
    index["manifests"].push_back(d);
  }
  return internal::write_index(store, index);
}

Result<std::vector<StoredImage>> import_oci_files(const fs::path& store, const normalize::ImageFiles& files,
                                                  const std::string& source) {
  auto index_path = QR_TRY(files.path_of("index.json", "OCI layout " + source));
  auto index_bytes = QR_TRY(read_file(index_path, kMaxJsonBytes));
  auto index = QR_TRY(parse_json(index_bytes, source + "/index.json"));
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
    return Status::bad_input(source + "/index.json has no manifests array");
  }
  if (index["manifests"].size() > kMaxManifests) {
    return Status::bad_input(source + "/index.json lists more than 1000 manifests");
  }
  std::vector<StoredImage> imported;
  std::set<std::string> seen, copied;
  for (size_t i = 0; i < index["manifests"].size(); ++i) {
    auto desc = QR_TRY(normalize::parse_descriptor(index["manifests"][i],
                                                   source + "/index.json: manifests[" + std::to_string(i) + "]"));
    if (!seen.insert(desc.digest).second) continue;
    imported.push_back(QR_TRY(import_manifest(store, files, desc, source, copied)));
  }
  if (imported.empty()) return Status::bad_input(source + "/index.json lists no image");
  return imported;
}

}  // namespace internal

namespace {

// The newest modification time (seconds, file-system clock) of `p` and everything under it; links not followed.
int64_t store_newest_mtime(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0;
  int64_t newest = st.st_mtim.tv_sec;
  if (!S_ISDIR(st.st_mode)) return newest;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) == 0) newest = std::max<int64_t>(newest, st.st_mtim.tv_sec);
  }
  return newest;
}

// Removes what a crashed import or pull left in tmp/: entries in which nothing was written for an hour. "Now"
// is the mtime of a file made here (the file system's clock, as the entries' times are; the library reads no
// clock). A live pull or extraction keeps writing under its directory, so it stays.
void remove_stale_store_temporaries(const fs::path& tmp) {
  constexpr int64_t kStaleSeconds = 3600;
  auto probe = TempDir::create(tmp, "probe.");
  if (!probe.ok()) return;
  const int64_t now = store_newest_mtime(probe->path());
  std::error_code ec;
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(tmp, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path() != probe->path() && store_newest_mtime(it->path()) + kStaleSeconds < now)
      stale.push_back(it->path());
  }
  for (const auto& p : stale) fs::remove_all(p, ec);
}

}  // namespace

Result<ImageStore> ImageStore::open(const fs::path& given) {
  std::error_code ec;
  // Absolute: root file systems are handed to the sandbox, whose working directory is `/`.
  const fs::path dir = fs::absolute(given, ec);
  if (ec) return Status::io("image store " + given.string() + ": " + ec.message());
  fs::create_directories(dir / "blobs" / "sha256", ec);
  if (!ec) fs::create_directories(dir / "rootfs", ec);
  if (!ec) fs::create_directories(internal::temp_dir(dir), ec);
  if (ec) return Status::io("create image store " + dir.string() + ": " + ec.message());
  remove_stale_store_temporaries(internal::temp_dir(dir));
  if (!fs::exists(dir / "oci-layout", ec)) {
    QR_RETURN_IF_ERROR(write_file_atomic(dir / "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 0644));
  }
  return ImageStore(dir);
}

Result<std::vector<StoredImage>> ImageStore::import_layout(const fs::path& layout) {
  std::error_code ec;
  if (!fs::is_directory(layout, ec)) return Status::not_found(layout.string() + " is not an OCI layout directory");
  return import(layout);
}

Result<std::vector<StoredImage>> ImageStore::import(const fs::path& source) {
  try {
    auto format = QR_TRY(normalize::detect_image_format(source));
    if (format == normalize::ImageFormat::kNotImage) {
      return Status::bad_input(source.string() + " is not an OCI layout directory, an oci-archive or a docker-archive");
    }
    std::unique_ptr<normalize::ImageFiles> files;
    if (format == normalize::ImageFormat::kOciLayout) {
      files = QR_TRY(normalize::ImageFiles::open_dir(source));
    } else {  // extracted under the store (same file system as the blobs), every member path checked
      auto extracted =
          normalize::ImageFiles::extract(source, internal::temp_dir(dir_), normalize::kDefaultMaxExpandedBytes);
      if (!extracted.ok()) return extracted.status().with_context("import " + source.string());
      files = std::move(*extracted);
    }
    auto lock = QR_TRY(FileLock::acquire(dir_ / ".lock"));  // rm must not collect a blob this import relies on
    internal::NewBlobs added(dir_);                         // taken out again unless the import succeeds
    auto imported = format == normalize::ImageFormat::kDockerArchive
                        ? internal::import_docker_files(dir_, *files, source.string())
                        : internal::import_oci_files(dir_, *files, source.string());
    if (!imported.ok()) return imported.status();
    QR_RETURN_IF_ERROR(internal::add_to_index(dir_, *imported));
    added.keep();
    return imported;
  } catch (const std::exception& e) {  // std::filesystem and nlohmann throw; nothing escapes the module
    return Status::internal("import " + source.string() + ": " + e.what());
  }
}

Result<std::vector<StoredImage>> ImageStore::list() const {
  auto index = QR_TRY(read_index(dir_));
  return internal::images_of(index, internal::index_name(dir_));
}

Result<VerifiedImage> ImageStore::verify(const std::string& digest) const {
  QR_RETURN_IF_ERROR(check_digest(digest));
  std::error_code ec;
  if (!fs::exists(blob_path(dir_, digest), ec)) {
    return Status::not_found("image " + digest + " is not in the image store " + dir_.string() +
                             "; get it with `quorate image pull NAME@" + digest + " --image-store " + dir_.string() +
                             "` or `quorate image import OCI-LAYOUT-OR-ARCHIVE --image-store " + dir_.string() + "`");
  }
  VerifiedImage out;
  out.digest = digest;
  auto manifest_bytes = QR_TRY(verified_bytes(dir_, digest, "manifest " + digest));
  auto manifest = QR_TRY(parse_json(manifest_bytes, "manifest " + digest));
  auto parsed = normalize::parse_image_manifest(manifest, "manifest " + digest);
  if (parsed.status().code() == Code::kUnsupported) {
    return Status::bad_input("image " + digest +
                             " is not one image's manifest (an index?); pin one platform's manifest");
  }
  if (!parsed.ok()) return parsed.status();
  {
    auto config_bytes = QR_TRY(verified_bytes(dir_, parsed->config.digest, "config of image " + digest));
    out.config = QR_TRY(parse_json(config_bytes, "config of image " + digest));
    QR_RETURN_IF_ERROR(normalize::check_image_config(out.config, "config of image " + digest));
    // One diff_id a layer: builds take them from here into the images they make (check_image_config has
    // checked that rootfs.diff_ids, when there, is an array of strings).
    const json::json_pointer diff_ids_at("/rootfs/diff_ids");
    const size_t diff_ids = out.config.contains(diff_ids_at) ? out.config.at(diff_ids_at).size() : 0;
    if (diff_ids != parsed->layers.size()) {
      return Status::bad_input("config of image " + digest + ": config lists " + std::to_string(diff_ids) +
                               " diff_ids for " + std::to_string(parsed->layers.size()) + " layers");
    }
    // Each layer decompresses to its diff_id: a build copies base layers with the config's diff_ids into the
    // image it makes, which would otherwise name layers it does not have.
    // Twice the unpack's bounds (a tar stream carries headers and padding past the files' declared sizes,
    // which the unpack counts): what a config naming zstd bombs may cost here.
    normalize::ExpandedTotal total(2 * normalize::kDefaultMaxImageExpandedBytes, "the image's layers");
    std::map<std::string, std::string> diff_id_of;  // a layer listed twice is read once
    for (size_t i = 0; i < parsed->layers.size(); ++i) {
      auto& l = parsed->layers[i];
      if (l.media_type.empty()) {  // a build copies the layer into its image under it
        return Status::bad_input("manifest " + digest + ": layer " + l.digest + " has no mediaType");
      }
      VerifiedLayer layer;
      layer.media_type = std::move(l.media_type);
      layer.digest = std::move(l.digest);
      layer.blob = blob_path(dir_, layer.digest);
      auto known = diff_id_of.find(layer.digest);
      if (known == diff_id_of.end()) {
        auto recorded = internal::verified_layer(dir_, layer.digest, layer.blob);
        if (recorded) {
          QR_RETURN_IF_ERROR(total.add(recorded->expanded, "layer " + layer.digest + " of image " + digest));
        } else {
          auto actual =
              internal::hash_layer_blob(dir_, layer.digest, layer.blob, 2 * normalize::kDefaultMaxExpandedBytes, total);
          if (!actual.ok()) return actual.status().with_context("layer " + layer.digest + " of image " + digest);
          recorded = std::move(*actual);
        }
        known = diff_id_of.emplace(layer.digest, recorded->diff_id).first;
      }
      const std::string& listed = out.config.at(diff_ids_at)[i].get_ref<const std::string&>();
      if (!check_digest(listed).ok()) {
        return Status::bad_input("config of image " + digest + ": diff_id " + std::to_string(i) + " is malformed");
      }
      if (known->second != listed) {
        return Status::bad_input("config of image " + digest + ": layer " + std::to_string(i) + " (" + layer.digest +
                                 ") decompresses to " + known->second + ", not the config's diff_id " + listed);
      }
      out.layers.push_back(std::move(layer));
    }
  }
  return out;
}

}  // namespace quorate::imagestore
