// read_base_image: a minimal OCI layout reader (index.json, blobs/sha256) that trusts nothing but the pin.
#include "base_image.h"

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"

namespace quorate::builder {
namespace {

std::filesystem::path blob_path(const std::filesystem::path& layout, const std::string& digest) {
  return layout / "blobs" / "sha256" / digest_hex(digest);
}

// Reads a blob and checks that its bytes hash to `digest`.
Result<std::string> read_verified(const std::filesystem::path& layout, const std::string& digest, const std::string& what,
                                  const std::string& name) {
  if (!check_digest(digest).ok()) return Status::bad_input("base image " + name + ": " + what + " has a malformed digest");
  auto path = blob_path(layout, digest);
  auto bytes = read_file(path, 64u << 20);
  if (!bytes.ok()) return bytes.status().with_context("base image " + name + ": " + what);
  std::string actual = sha256_digest(*bytes);
  if (actual != digest) {
    return Status::bad_input("base image " + name + ": digest mismatch: " + path.string() + " holds " + actual +
                             ", expected " + digest);
  }
  return bytes;
}

Result<nlohmann::json> parse_json(const std::string& bytes, const std::string& what, const std::string& name) {
  try {
    return nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& e) {
    return Status::bad_input("base image " + name + ": " + what + " is not JSON: " + e.what());
  }
}

// Whether the index (or an index it lists) names `digest`; lists what it does name otherwise.
bool index_lists(const std::filesystem::path& layout, const nlohmann::json& index, const std::string& digest,
                 std::vector<std::string>& seen, int depth) {
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) return false;
  for (const auto& m : index["manifests"]) {
    if (!m.is_object() || !m.contains("digest") || !m["digest"].is_string()) continue;
    std::string d = m["digest"];
    if (d == digest) return true;
    seen.push_back(d);
    if (depth < 2 && m.value("mediaType", "") == "application/vnd.oci.image.index.v1+json") {
      auto nested = read_file(blob_path(layout, d), 16u << 20);
      if (!nested.ok()) continue;
      try {
        if (index_lists(layout, nlohmann::json::parse(*nested), digest, seen, depth + 1)) return true;
      } catch (const nlohmann::json::exception&) {
      }
    }
  }
  return false;
}

// A base image kept with Docker media types (`skopeo copy --preserve-digests docker://… oci:DIR`) has the same
// layer bytes as its OCI form: its layers enter the built OCI manifest under the OCI media type of the same
// bytes, never mixed in under Docker's (which umoci and OCI tools refuse). Foreign layers are refused.
Result<std::string> oci_layer_media_type(const std::string& type, const std::string& name) {
  if (type == "application/vnd.docker.image.rootfs.diff.tar.gzip") return std::string("application/vnd.oci.image.layer.v1.tar+gzip");
  if (type == "application/vnd.docker.image.rootfs.diff.tar") return std::string("application/vnd.oci.image.layer.v1.tar");
  if (type.starts_with("application/vnd.docker.image.rootfs.foreign")) {
    return Status::unsupported("base image " + name + ": a foreign (non-distributable) layer " + type +
                               " cannot be part of a rebuilt image");
  }
  return type;
}

}  // namespace

Result<BaseImageData> read_base_image(const std::filesystem::path& layout, const std::string& name,
                                      const std::string& digest) {
  std::error_code ec;
  if (!std::filesystem::is_directory(layout, ec)) {
    return Status::not_found("base image " + name + ": " + layout.string() + " is not an OCI layout directory");
  }
  auto index_bytes = read_file(layout / "index.json", 16u << 20);
  if (!index_bytes.ok()) return index_bytes.status().with_context("base image " + name);
  auto index = QR_TRY(parse_json(*index_bytes, "index.json", name));
  std::vector<std::string> seen;
  if (!index_lists(layout, index, digest, seen, 0) && !std::filesystem::exists(blob_path(layout, digest), ec)) {
    std::string listed;
    for (const auto& s : seen) listed += (listed.empty() ? "" : ", ") + s;
    return Status::bad_input("base image " + name + ": digest mismatch: " + layout.string() + " holds " +
                             (listed.empty() ? "no manifest" : listed) + ", not the pinned " + digest +
                             ". If the layout was copied from a registry image with Docker media types, skopeo "
                             "converted its manifest to OCI (a new digest): copy it again with `skopeo copy "
                             "--preserve-digests`, or pin the digest the layout holds");
  }
  BaseImageData out;
  out.name = name;
  out.manifest_digest = digest;
  auto manifest_bytes = QR_TRY(read_verified(layout, digest, "manifest", name));
  auto manifest = QR_TRY(parse_json(manifest_bytes, "manifest", name));
  try {
    if (manifest.value("mediaType", "") == "application/vnd.oci.image.index.v1+json") {
      return Status::unsupported("base image " + name + ": " + digest +
                                 " is an image index; pin the digest of one platform's manifest");
    }
    const auto& config = manifest.at("config");
    auto config_bytes = QR_TRY(read_verified(layout, config.at("digest").get<std::string>(), "config", name));
    out.config = QR_TRY(parse_json(config_bytes, "config", name));
    if (manifest.value("mediaType", "") == "application/vnd.docker.distribution.manifest.list.v2+json") {
      return Status::unsupported("base image " + name + ": " + digest +
                                 " is a Docker manifest list; pin the digest of one platform's manifest");
    }
    for (const auto& l : manifest.at("layers")) {
      BaseLayer layer;
      layer.media_type = QR_TRY(oci_layer_media_type(l.at("mediaType").get<std::string>(), name));
      layer.digest = l.at("digest").get<std::string>();
      layer.size = l.at("size").get<uint64_t>();
      if (!check_digest(layer.digest).ok()) return Status::bad_input("base image " + name + ": malformed layer digest");
      layer.blob = blob_path(layout, layer.digest);
      out.layers.push_back(std::move(layer));
    }
    for (const auto& d : out.config.at("rootfs").at("diff_ids")) out.diff_ids.push_back(d.get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    return Status::bad_input("base image " + name + ": malformed manifest or config: " + e.what());
  }
  if (out.diff_ids.size() != out.layers.size()) {
    return Status::bad_input("base image " + name + ": config lists " + std::to_string(out.diff_ids.size()) +
                             " diff_ids for " + std::to_string(out.layers.size()) + " layers");
  }
  return out;
}

}  // namespace quorate::builder
