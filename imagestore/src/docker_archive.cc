// A docker-archive (`docker save`: manifest.json, config, layer tars) into the store. It has no OCI manifest,
// so the store writes one: canonical JSON (normalize::make_manifest) over docker's config bytes and layer
// files as saved, never re-normalized, so one archive always gives one digest.
#include <fcntl.h>
#include <unistd.h>

#include <array>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/oci.h"
#include "store_internal.h"

namespace quorate::imagestore::internal {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The digest a member's name promises (`blobs/sha256/<hex>`, `<hex>.json`), or "".
std::string digest_in_name(const std::string& name) {
  std::string base = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
  if (base.size() == 69 && base.ends_with(".json")) base = base.substr(0, 64);
  return is_hex64(base) ? "sha256:" + base : "";
}

// The OCI layer media type for a layer file, by its first bytes: docker saves uncompressed tars, but a
// gzip or zstd stream is kept as it is and named for what it is.
Result<std::string> layer_media_type(const fs::path& path) {
  std::array<unsigned char, 4> head{};
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + path.string(), errno);
  ssize_t n = ::read(fd, head.data(), head.size());
  ::close(fd);
  if (n >= 2 && head[0] == 0x1f && head[1] == 0x8b) return std::string("application/vnd.oci.image.layer.v1.tar+gzip");
  if (n == 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd) {
    return std::string("application/vnd.oci.image.layer.v1.tar+zstd");
  }
  return std::string("application/vnd.oci.image.layer.v1.tar");
}

Result<normalize::Descriptor> import_config(const fs::path& store, const normalize::ImageFiles& files,
                                            const std::string& name, json& config) {
  auto path = QR_TRY(files.path_of(name, "config"));
  auto bytes = QR_TRY(read_file(path, kMaxJsonBytes));
  std::string digest = sha256_digest(bytes);
  std::string promised = digest_in_name(name);
  if (!promised.empty() && promised != digest) {
    return Status::bad_input("config " + name + " holds " + digest + ", not the " + promised + " its name promises");
  }
  config = QR_TRY(parse_json(bytes, "config " + name));
  auto written = write_blob(store, bytes);
  if (!written.ok()) return written.status();
  return normalize::Descriptor{normalize::kMediaTypeConfig, digest, bytes.size(), {}};
}

// Layer `i`: its digest is the one its name promises (`blobs/sha256/<hex>`), else (legacy `<id>/layer.tar`,
// an uncompressed tar) the config's diff_id; the copy checks the bytes against it.
Result<normalize::Descriptor> import_layer(const fs::path& store, const normalize::ImageFiles& files,
                                           const std::string& name, const std::string& diff_id) {
  auto path = QR_TRY(files.path_of(name, "layer"));
  std::string digest = digest_in_name(name);
  if (digest.empty()) digest = diff_id;
  QR_RETURN_IF_ERROR(copy_blob(store, path, digest, "layer " + name));
  std::error_code ec;
  uint64_t size = fs::file_size(path, ec);
  if (ec) return Status::io("size of " + path.string() + ": " + ec.message());
  auto media_type = QR_TRY(layer_media_type(path));
  return normalize::Descriptor{media_type, digest, size, {}};
}

Result<StoredImage> import_one(const fs::path& store, const normalize::ImageFiles& files, const json& m) {
  json config;
  auto config_desc = QR_TRY(import_config(store, files, m.at("Config").get<std::string>(), config));
  const json& diff_ids = config.at("rootfs").at("diff_ids");
  const json& names = m.at("Layers");
  if (!diff_ids.is_array() || !names.is_array() || diff_ids.size() != names.size()) {
    return Status::bad_input("the config lists " + std::to_string(diff_ids.size()) + " diff_ids for " +
                             std::to_string(names.size()) + " layers in manifest.json");
  }
  std::vector<normalize::Descriptor> layers;
  for (size_t i = 0; i < names.size(); ++i) {
    layers.push_back(QR_TRY(import_layer(store, files, names[i].get<std::string>(), diff_ids[i].get<std::string>())));
  }
  std::string manifest = QR_TRY(normalize::make_manifest(config_desc, layers));
  StoredImage out;
  out.digest = QR_TRY(write_blob(store, manifest));
  out.size = manifest.size();
  if (m.contains("RepoTags") && m["RepoTags"].is_array() && !m["RepoTags"].empty() && m["RepoTags"][0].is_string()) {
    out.ref_name = m["RepoTags"][0].get<std::string>();
  }
  return out;
}

}  // namespace

Result<std::vector<StoredImage>> import_docker_files(const fs::path& store, const normalize::ImageFiles& files,
                                                     const std::string& source) {
  auto path = QR_TRY(files.path_of("manifest.json", source));
  auto bytes = QR_TRY(read_file(path, kMaxJsonBytes));
  auto manifest = QR_TRY(parse_json(bytes, source + ": manifest.json"));
  if (!manifest.is_array() || manifest.empty()) return Status::bad_input(source + ": manifest.json is not a non-empty array");
  std::vector<StoredImage> out;
  for (const auto& m : manifest) {
    try {
      auto image = import_one(store, files, m);
      if (!image.ok()) return image.status().with_context(source);
      out.push_back(std::move(*image));
    } catch (const json::exception& e) {
      return Status::bad_input(source + ": manifest.json or a config is malformed: " + e.what());
    }
  }
  return out;
}

}  // namespace quorate::imagestore::internal
