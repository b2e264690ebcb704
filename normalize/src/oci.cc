// OCI image layout output: descriptors, canonical JSON, blobs streamed to a temp file and renamed by digest.
#include "quorate/normalize/oci.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize {
namespace fs = std::filesystem;

nlohmann::json Descriptor::to_json() const {
  nlohmann::json j = {{"mediaType", media_type}, {"digest", digest}, {"size", size}};
  if (!annotations.empty()) j["annotations"] = annotations;
  return j;
}

Result<Descriptor> parse_descriptor(const nlohmann::json& d, const std::string& where) {
  if (!d.is_object())
    return Status::bad_input(where + ": a descriptor that is not an object: " + d.dump().substr(0, 80));
  Descriptor out;
  auto digest = d.find("digest");
  if (digest == d.end() || !digest->is_string()) return Status::bad_input(where + ": a descriptor without a digest");
  out.digest = digest->get<std::string>();
  if (Status s = check_digest(out.digest); !s.ok()) return s.with_context(where);
  const std::string what = where + ": descriptor " + out.digest;
  auto size = d.find("size");
  if (size == d.end() || !(size->is_number_unsigned() || (size->is_number_integer() && size->get<int64_t>() >= 0)) ||
      size->get<uint64_t>() > uint64_t{INT64_MAX}) {
    return Status::bad_input(what + " has no size, or one that is not a non-negative integer");
  }
  out.size = size->get<uint64_t>();
  if (auto type = d.find("mediaType"); type != d.end()) {
    if (!type->is_string()) return Status::bad_input(what + " has a mediaType that is not a string");
    out.media_type = type->get<std::string>();
  }
  if (auto annotations = d.find("annotations"); annotations != d.end()) {
    if (!annotations->is_object()) return Status::bad_input(what + " has annotations that are not an object");
    for (const auto& [key, value] : annotations->items()) {
      if (!value.is_string()) return Status::bad_input(what + " has annotation \"" + key + "\" that is not a string");
      out.annotations[key] = value.get<std::string>();
    }
  }
  return out;
}

Status check_blob_size(uint64_t actual, uint64_t size, const std::string& what, const std::string& digest) {
  if (actual == size) return Status();
  return Status::bad_input(what + " blob " + digest + " is " + std::to_string(actual) + " bytes; its descriptor says " +
                           std::to_string(size));
}

Result<ImageManifest> parse_image_manifest(const nlohmann::json& m, const std::string& where) {
  if (!m.is_object()) return Status::bad_input(where + " is not a JSON object");
  ImageManifest out;
  if (auto type = m.find("mediaType"); type != m.end()) {
    if (!type->is_string()) return Status::bad_input(where + " has a mediaType that is not a string");
    out.media_type = type->get<std::string>();
  }
  if (out.media_type == kMediaTypeIndex || out.media_type == kMediaTypeDockerManifestList || m.contains("manifests")) {
    return Status::unsupported(where + " is an image index, not one image; pin the digest of one platform's manifest");
  }
  auto config = m.find("config");
  if (config == m.end()) return Status::bad_input(where + " names no config");
  out.config = QR_TRY(parse_descriptor(*config, where + " config"));
  auto layers = m.find("layers");
  if (layers == m.end() || !layers->is_array()) return Status::bad_input(where + " has no \"layers\" array");
  QR_RETURN_IF_ERROR(check_layer_count(layers->size(), where));
  for (size_t i = 0; i < layers->size(); ++i) {
    out.layers.push_back(QR_TRY(parse_descriptor((*layers)[i], where + " layer " + std::to_string(i))));
  }
  return out;
}

namespace {

const char* json_type(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

enum class Shape { kString, kStrings, kObject, kStringMap, kBoolean };

bool has_shape(const nlohmann::json& v, Shape shape, bool null_allowed) {
  if (v.is_null()) return null_allowed;
  switch (shape) {
    case Shape::kString:
      return v.is_string();
    case Shape::kBoolean:
      return v.is_boolean();
    case Shape::kObject:
      return v.is_object();
    case Shape::kStrings:
      return v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); });
    case Shape::kStringMap:
      return v.is_object() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); });
  }
  return false;
}

const char* shape_name(Shape shape) {
  switch (shape) {
    case Shape::kString:
      return "a string";
    case Shape::kBoolean:
      return "a boolean";
    case Shape::kObject:
      return "an object";
    case Shape::kStrings:
      return "an array of strings";
    case Shape::kStringMap:
      return "an object of strings";
  }
  return "?";
}

// `object[key]`, when present, has `shape` (or is null, when `null_allowed`).
Status check_field(const nlohmann::json& object, const char* key, const std::string& name, Shape shape,
                   bool null_allowed, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || has_shape(*it, shape, null_allowed)) return Status();
  return Status::bad_input(where + ": config field \"" + name + "\" is " + json_type(*it) + ", not " +
                           shape_name(shape) + (null_allowed ? " or null" : ""));
}

}  // namespace

Status check_image_config(const nlohmann::json& c, const std::string& where) {
  if (!c.is_object()) return Status::bad_input(where + ": the config is " + json_type(c) + ", not an object");
  for (const char* key : {"os", "architecture", "variant", "os.version", "created", "author"}) {
    QR_RETURN_IF_ERROR(check_field(c, key, key, Shape::kString, false, where));
  }
  QR_RETURN_IF_ERROR(check_field(c, "os.features", "os.features", Shape::kStrings, true, where));
  QR_RETURN_IF_ERROR(check_field(c, "config", "config", Shape::kObject, true, where));
  if (auto it = c.find("config"); it != c.end() && it->is_object()) {
    const auto& run = *it;
    for (const char* key : {"User", "WorkingDir", "StopSignal"}) {
      QR_RETURN_IF_ERROR(check_field(run, key, std::string("config.") + key, Shape::kString, false, where));
    }
    for (const char* key : {"Env", "Entrypoint", "Cmd", "Shell", "OnBuild"}) {
      QR_RETURN_IF_ERROR(check_field(run, key, std::string("config.") + key, Shape::kStrings, true, where));
    }
    for (const char* key : {"ExposedPorts", "Volumes", "Healthcheck"}) {
      QR_RETURN_IF_ERROR(check_field(run, key, std::string("config.") + key, Shape::kObject, true, where));
    }
    QR_RETURN_IF_ERROR(check_field(run, "Labels", "config.Labels", Shape::kStringMap, true, where));
  }
  QR_RETURN_IF_ERROR(check_field(c, "rootfs", "rootfs", Shape::kObject, false, where));
  if (auto it = c.find("rootfs"); it != c.end()) {
    QR_RETURN_IF_ERROR(check_field(*it, "type", "rootfs.type", Shape::kString, false, where));
    QR_RETURN_IF_ERROR(check_field(*it, "diff_ids", "rootfs.diff_ids", Shape::kStrings, false, where));
  }
  if (auto it = c.find("history"); it != c.end()) {
    if (!it->is_array()) {
      return Status::bad_input(where + ": config field \"history\" is " + json_type(*it) + ", not an array");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& h = (*it)[i];
      const std::string name = "history[" + std::to_string(i) + "]";
      if (!h.is_object()) return Status::bad_input(where + ": config field \"" + name + "\" is not an object");
      for (const char* key : {"created", "author", "created_by", "comment"}) {
        QR_RETURN_IF_ERROR(check_field(h, key, name + "." + key, Shape::kString, false, where));
      }
      QR_RETURN_IF_ERROR(check_field(h, "empty_layer", name + ".empty_layer", Shape::kBoolean, false, where));
    }
  }
  return Status();
}

struct BlobWriter::Impl {
  fs::path blobs;  // <layout>/blobs/sha256
  fs::path temp;
  int fd = -1;
  Sha256 sha;
  uint64_t size = 0;
  bool committed = false;
};

BlobWriter::BlobWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BlobWriter::~BlobWriter() {
  if (impl_->fd >= 0) ::close(impl_->fd);
  if (!impl_->committed) ::unlink(impl_->temp.c_str());
}

Status BlobWriter::write(std::span<const uint8_t> bytes) {
  if (impl_->fd < 0) return Status::internal("write to a committed blob");
  QR_RETURN_IF_ERROR(write_all(impl_->fd, bytes, impl_->temp.c_str()));
  impl_->sha.update(bytes);
  impl_->size += bytes.size();
  return Status();
}

Result<Descriptor> BlobWriter::commit(std::string media_type) {
  Impl& b = *impl_;
  if (b.fd < 0) return Status::internal("blob committed twice");
  if (::fsync(b.fd) != 0) return Status::from_errno("fsync " + b.temp.string(), errno);
  ::close(b.fd);
  b.fd = -1;
  Descriptor d;
  d.media_type = std::move(media_type);
  d.digest = b.sha.finish_digest();
  d.size = b.size;
  fs::path target = b.blobs / digest_hex(d.digest);
  // Same digest, same bytes: replacing an existing blob is harmless.
  if (::rename(b.temp.c_str(), target.c_str()) != 0) return Status::from_errno("rename to " + target.string(), errno);
  b.committed = true;
  return d;
}

Result<OciLayoutWriter> OciLayoutWriter::open(const fs::path& dir) {
  // Made inside `dir` through its descriptor, never by path: when an interrupt has removed `dir` meanwhile,
  // this fails instead of making it again (a layout left behind after SIGTERM, seen once in 40 runs).
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open layout directory " + dir.string(), errno);
  for (const char* sub : {"blobs", "blobs/sha256"}) {
    if (::mkdirat(fd, sub, 0755) != 0 && errno != EEXIST) {
      int e = errno;
      ::close(fd);
      return Status::from_errno("create " + (dir / sub).string(), e);
    }
  }
  ::close(fd);
  QR_RETURN_IF_ERROR(write_file_atomic(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  return OciLayoutWriter(dir);
}

Result<std::unique_ptr<BlobWriter>> OciLayoutWriter::begin_blob() {
  auto impl = std::make_unique<BlobWriter::Impl>();
  impl->blobs = dir_ / "blobs" / "sha256";
  // The temporary lives inside the layout, so the final rename never crosses a filesystem.
  std::string templ = (impl->blobs / ".blob.tmp.XXXXXX").string();
  int fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0) return Status::from_errno("create a blob in " + impl->blobs.string(), errno);
  impl->temp = templ;
  impl->fd = fd;
  std::unique_ptr<BlobWriter> blob(new BlobWriter(std::move(impl)));  // from here on its destructor cleans up
  if (::fchmod(fd, 0644) != 0) return Status::from_errno("chmod " + templ, errno);
  return blob;
}

Result<Descriptor> OciLayoutWriter::add_blob(std::string_view media_type, std::string_view bytes) {
  auto blob = QR_TRY(begin_blob());
  QR_RETURN_IF_ERROR(blob->Sink::write(bytes));
  return blob->commit(std::string(media_type));
}

Result<Descriptor> OciLayoutWriter::add_blob_file(std::string_view media_type, const fs::path& path,
                                                  uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("no such file: " + path.string());
    return Status::from_errno("open " + path.string(), errno);
  }
  auto blob = begin_blob();
  std::vector<uint8_t> buf(1 << 20);
  uint64_t total = 0;
  Status s = blob.ok() ? Status() : blob.status();
  while (s.ok()) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) s = Status::from_errno("read " + path.string(), errno);
    if (n <= 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      s = Status::bad_input(path.string() + " is larger than the limit of " + std::to_string(max_bytes) + " bytes");
      break;
    }
    s = (*blob)->write(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  QR_RETURN_IF_ERROR(s);
  return (*blob)->commit(std::string(media_type));
}

Status OciLayoutWriter::write_index(Descriptor manifest, const std::string& ref_name) {
  if (!ref_name.empty()) manifest.annotations[kRefNameAnnotation] = ref_name;
  nlohmann::json index = {
      {"schemaVersion", 2}, {"mediaType", kMediaTypeIndex}, {"manifests", nlohmann::json::array({manifest.to_json()})}};
  auto bytes = QR_TRY(canonical_json(index, "index.json"));
  return write_file_atomic(dir_ / "index.json", bytes);
}

Result<std::string> make_manifest(const Descriptor& config, const std::vector<Descriptor>& layers) {
  nlohmann::json jl = nlohmann::json::array();
  for (const auto& l : layers) jl.push_back(l.to_json());
  nlohmann::json m = {
      {"schemaVersion", 2}, {"mediaType", kMediaTypeManifest}, {"config", config.to_json()}, {"layers", jl}};
  return canonical_json(m, "manifest");
}

}  // namespace quorate::normalize
