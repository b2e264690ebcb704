// read_docker_archive: manifest.json, each config checked against its name, each layer's promised digest.
#include "quorate/normalize/docker_archive.h"

#include "image_members.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"

namespace quorate::normalize {

namespace internal {

Result<std::string> read_member(const ImageFiles& files, const std::string& name, const std::string& what) {
  auto path = QR_TRY(files.path_of(name, what));
  auto bytes = read_file(path, kMaxJsonBytes);
  if (!bytes.ok()) return bytes.status().with_context(what + " " + name);
  return bytes;
}

Result<nlohmann::json> parse_json(const std::string& bytes, const std::string& what) {
  QR_RETURN_IF_ERROR(check_json_depth(bytes, what));
  try {
    return nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& e) {
    return Status::bad_input(what + " is not valid JSON: " + e.what());
  }
}

}  // namespace internal

namespace {

using internal::parse_json;
using internal::read_member;
using nlohmann::json;

bool is_string_array(const json& j) {
  if (!j.is_array()) return false;
  for (const auto& e : j) {
    if (!e.is_string()) return false;
  }
  return true;
}

// What the configs of one manifest.json may weigh together: each entry's is held until the archive is read, and
// a 16 KB archive listing one 16 MB config 300 times held 4.8 GB.
constexpr uint64_t kMaxConfigBytesTogether = uint64_t{64} << 20;

Result<DockerImage> read_entry(const ImageFiles& files, const json& m, size_t index, uint64_t& config_bytes) {
  std::string where = "manifest.json entry " + std::to_string(index);
  if (!m.is_object() || !m.contains("Config") || !m["Config"].is_string() || !m.contains("Layers") ||
      !is_string_array(m["Layers"])) {
    return Status::bad_input(where + " has no Config name or Layers list");
  }
  DockerImage image;
  image.config_name = m["Config"].get<std::string>();
  image.config_bytes = QR_TRY(read_member(files, image.config_name, "config"));
  config_bytes += image.config_bytes.size();
  if (config_bytes > kMaxConfigBytesTogether) {
    return Status::bad_input("manifest.json: the configs of its first " + std::to_string(index + 1) + " entries pass " +
                             std::to_string(kMaxConfigBytesTogether) + " bytes together");
  }
  image.config_digest = sha256_digest(image.config_bytes);
  std::string promised = digest_in_name(image.config_name);
  if (!promised.empty() && promised != image.config_digest) {
    return Status::bad_input("config " + image.config_name + " does not match its digest " + promised + " (holds " +
                             image.config_digest + ")");
  }
  image.config = QR_TRY(parse_json(image.config_bytes, "config " + image.config_name));
  QR_RETURN_IF_ERROR(check_image_config(image.config, "config " + image.config_name));
  const json::json_pointer diff_ids_at("/rootfs/diff_ids");
  const json& names = m["Layers"];
  QR_RETURN_IF_ERROR(check_layer_count(names.size(), where));
  if (!image.config.is_object() || !image.config.contains(diff_ids_at) ||
      !is_string_array(image.config.at(diff_ids_at)) || image.config.at(diff_ids_at).size() != names.size()) {
    return Status::bad_input("config " + image.config_name + " does not list a diff_id for each of the " +
                             std::to_string(names.size()) + " layers in " + where);
  }
  const json& diff_ids = image.config.at(diff_ids_at);
  for (size_t i = 0; i < names.size(); ++i) {
    DockerLayer layer;
    layer.name = names[i].get<std::string>();
    layer.file = QR_TRY(files.path_of(layer.name, "layer"));
    // Legacy `<id>/layer.tar` names promise nothing: the uncompressed layer's digest is its diff_id.
    layer.digest = digest_in_name(layer.name);
    if (layer.digest.empty()) layer.digest = diff_ids[i].get<std::string>();
    if (!check_digest(layer.digest).ok()) {
      return Status::bad_input("config " + image.config_name + ": malformed diff_id \"" + layer.digest + "\"");
    }
    image.layers.push_back(std::move(layer));
  }
  if (m.contains("RepoTags") && is_string_array(m["RepoTags"]) && !m["RepoTags"].empty()) {
    image.repo_tag = m["RepoTags"][0].get<std::string>();
  }
  image.entry = m;
  return image;
}

}  // namespace

std::string digest_in_name(const std::string& name) {
  size_t slash = name.rfind('/');
  std::string base = name.substr(slash == std::string::npos ? 0 : slash + 1);
  if (base.size() == 69 && base.ends_with(".json")) base.resize(64);
  std::string digest = "sha256:" + base;
  return check_digest(digest).ok() ? digest : "";
}

Result<std::vector<DockerImage>> read_docker_archive(const ImageFiles& files) {
  auto bytes = QR_TRY(read_member(files, "manifest.json", "manifest"));
  auto manifest = QR_TRY(parse_json(bytes, "manifest.json"));
  if (!manifest.is_array() || manifest.empty()) return Status::bad_input("manifest.json is not a non-empty array");
  std::vector<DockerImage> images;
  uint64_t config_bytes = 0;
  for (size_t i = 0; i < manifest.size(); ++i)
    images.push_back(QR_TRY(read_entry(files, manifest[i], i, config_bytes)));
  return images;
}

}  // namespace quorate::normalize
