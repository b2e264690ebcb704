// read_base_image: the pinned manifest of an OCI layout (through normalize's reader), checked against the pin.
#include "base_image.h"

#include <map>
#include <set>

#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/oci_layout.h"

namespace quorate::builder {
namespace {

std::filesystem::path blob_path(const std::filesystem::path& layout, const std::string& digest) {
  return layout / "blobs" / "sha256" / digest_hex(digest);
}

Result<nlohmann::json> parse_json(const std::string& bytes, const std::string& what, const std::string& name) {
  QR_RETURN_IF_ERROR(check_json_depth(bytes, "base image " + name + ": " + what));
  try {
    return nlohmann::json::parse(bytes);
  } catch (const nlohmann::json::exception& e) {
    return Status::bad_input("base image " + name + ": " + what + " is not JSON: " + e.what());
  }
}

// Whether the index (or an index it lists, two levels deep) names `digest`; collects what it does name
// otherwise. Each nested index is read once, whatever number of times it is listed: one listed 100 times by an
// index listed 100 times was read 10,100 times, and every digest met was kept (a million from 20 KB).
bool index_lists(const std::filesystem::path& layout, const nlohmann::json& index, const std::string& digest,
                 std::set<std::string>& seen, std::set<std::string>& opened, int depth) {
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) return false;
  for (const auto& m : index["manifests"]) {
    if (!m.is_object() || !m.contains("digest") || !m["digest"].is_string()) continue;
    std::string d = m["digest"];
    if (d == digest) return true;
    if (!check_digest(d).ok()) continue;  // a path under blobs/ is made of it: "sha256:../../x" is no digest
    seen.insert(d);
    const auto type = m.find("mediaType");  // value() would throw on a mediaType that is no string
    const bool an_index = type != m.end() && type->is_string() && *type == "application/vnd.oci.image.index.v1+json";
    if (depth < 2 && an_index && opened.insert(d).second) {
      auto nested = read_file(blob_path(layout, d), 16u << 20);
      if (!nested.ok() || !check_json_depth(*nested, "").ok()) continue;
      try {
        if (index_lists(layout, nlohmann::json::parse(*nested), digest, seen, opened, depth + 1)) return true;
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
  if (type == "application/vnd.docker.image.rootfs.diff.tar.gzip")
    return std::string("application/vnd.oci.image.layer.v1.tar+gzip");
  if (type == "application/vnd.docker.image.rootfs.diff.tar")
    return std::string("application/vnd.oci.image.layer.v1.tar");
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
  std::set<std::string> seen, opened;
  if (!index_lists(layout, index, digest, seen, opened, 0) && !std::filesystem::exists(blob_path(layout, digest), ec)) {
    std::string listed;
    for (const auto& s : seen) {
      if (listed.size() > 400) {
        listed = std::to_string(seen.size()) + " digests (" + listed + ", …)";
        break;
      }
      listed += (listed.empty() ? "" : ", ") + s;
    }
    return Status::bad_input("base image " + name + ": digest mismatch: " + layout.string() + " holds " +
                             (listed.empty() ? "no manifest" : listed) + ", not the pinned " + digest +
                             ". If the layout was copied from a registry image with Docker media types, skopeo "
                             "converted its manifest to OCI (a new digest): copy it again with `skopeo copy "
                             "--preserve-digests`, or pin the digest the layout holds");
  }
  auto files = QR_TRY(normalize::ImageFiles::open_dir(layout));
  auto image = normalize::read_oci_manifest(*files, digest);
  if (!image.ok()) return image.status().with_context("base image " + name);
  BaseImageData out;
  out.name = name;
  out.manifest_digest = digest;
  out.config = std::move(image->config);
  for (auto& l : image->layers) {
    BaseLayer layer;
    layer.media_type = QR_TRY(oci_layer_media_type(l.media_type, name));
    layer.digest = std::move(l.digest);
    layer.blob = std::move(l.file);
    out.layers.push_back(std::move(layer));
  }
  const nlohmann::json& config = out.config;
  if (config.contains("rootfs") && config["rootfs"].is_object() && config["rootfs"].contains("diff_ids") &&
      config["rootfs"]["diff_ids"].is_array()) {
    for (const auto& d : config["rootfs"]["diff_ids"]) {
      if (!d.is_string())
        return Status::bad_input("base image " + name + ": config lists a diff_id that is not a string");
      out.diff_ids.push_back(d.get<std::string>());
    }
  }
  if (out.diff_ids.size() != out.layers.size()) {
    return Status::bad_input("base image " + name + ": config lists " + std::to_string(out.diff_ids.size()) +
                             " diff_ids for " + std::to_string(out.layers.size()) + " layers");
  }
  // The built image's config names its base layers by these diff_ids: each layer must decompress to its own.
  // No bound on the bytes: the operator's layout holds the base, which is never unpacked.
  std::map<std::string, std::string> diff_id_of;  // a layer listed twice is read once
  for (size_t i = 0; i < out.layers.size(); ++i) {
    const BaseLayer& l = out.layers[i];
    if (!check_digest(out.diff_ids[i]).ok()) {
      return Status::bad_input("base image " + name + ": diff_id " + std::to_string(i) + " is malformed");
    }
    auto known = diff_id_of.find(l.digest);
    if (known == diff_id_of.end()) {
      auto read = normalize::layer_blob_digests(l.blob, l.digest, UINT64_MAX);
      if (!read.ok()) return read.status().with_context("base image " + name + " layer " + l.digest);
      known = diff_id_of.emplace(l.digest, read->diff_id).first;
    }
    if (known->second != out.diff_ids[i]) {
      return Status::bad_input("base image " + name + ": layer " + std::to_string(i) + " (" + l.digest +
                               ") decompresses to " + known->second + ", not the config's diff_id " + out.diff_ids[i]);
    }
  }
  return out;
}

Result<normalize::Descriptor> copy_base_layer(normalize::OciLayoutWriter& layout, const std::string& image,
                                              const std::string& media_type, const std::string& digest,
                                              const std::filesystem::path& blob) {
  auto copied = layout.add_blob_file(media_type, blob, uint64_t{16} << 30);
  if (!copied.ok()) return copied.status().with_context("base image " + image + " layer " + digest);
  if (copied->digest != digest) {
    return Status::bad_input("base image " + image + ": digest mismatch: layer blob " + blob.string() + " holds " +
                             copied->digest + ", expected " + digest);
  }
  return copied;
}

}  // namespace quorate::builder
