// read_oci_layout: index.json → the chosen manifest → its config and layer files, every JSON blob verified.
#include "quorate/normalize/oci_layout.h"

#include <optional>
#include <set>
#include <utility>

#include "image_members.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/oci.h"

namespace quorate::normalize {
using nlohmann::json;

namespace {

using internal::parse_json;
using internal::read_member;

// At most this many descriptors are read from index.json and the indexes it lists, duplicates included.
// Real multi-platform indexes list tens; a flood (an index listing a nested index thousands of times, each
// listing a manifest thousands of times) is refused before it can grow memory.
constexpr size_t kMaxIndexDescriptors = 4096;

// A JSON blob of the layout, checked against its digest and, when `size` is set, its descriptor's size.
Result<json> read_json_blob(const ImageFiles& src, const std::string& digest, const std::string& what,
                            std::optional<uint64_t> size = std::nullopt) {
  if (!check_digest(digest).ok())
    return Status::bad_input(what + ": malformed or unsupported digest \"" + digest + "\"");
  auto bytes = QR_TRY(read_member(src, "blobs/sha256/" + digest_hex(digest), what + " " + digest));
  std::string actual = sha256_digest(bytes);
  if (actual != digest)
    return Status::bad_input(what + " blob " + digest + " does not match its digest (holds " + actual + ")");
  if (size) QR_RETURN_IF_ERROR(check_blob_size(bytes.size(), *size, what, digest));
  auto j = QR_TRY(parse_json(bytes, what + " " + digest));
  if (!j.is_object()) return Status::bad_input(what + " " + digest + " is not a JSON object");
  return j;
}

std::string platform_of(const json& d) {
  if (!d.contains("platform") || !d["platform"].is_object()) return "";
  const json& p = d["platform"];
  auto field = [&](const char* name) {
    auto it = p.find(name);
    return it != p.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string s = field("os") + "/" + field("architecture");
  if (!field("variant").empty()) s += "/" + field("variant");
  return s;
}

// The walk from index.json to the manifest descriptors it leads to (nested indexes followed one level).
// Each nested index is read once and each (manifest digest, platform) listed once, however often they recur.
struct IndexWalk {
  explicit IndexWalk(const ImageFiles& files) : src(files) {}
  const ImageFiles& src;
  size_t visited = 0;
  std::set<std::string> indexes_read;
  std::set<std::pair<std::string, std::string>> manifests_listed;
  std::vector<json> manifests;
};

Status collect_manifests(IndexWalk& walk, const json& index, int depth) {
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
    return Status::bad_input("index has no \"manifests\" array");
  }
  for (size_t i = 0; i < index["manifests"].size(); ++i) {
    const json& d = index["manifests"][i];
    if (++walk.visited > kMaxIndexDescriptors) {
      return Status::bad_input("lists more than " + std::to_string(kMaxIndexDescriptors) +
                               " descriptors, counting those of the indexes it lists (the limit)");
    }
    auto descriptor = QR_TRY(parse_descriptor(d, "manifests[" + std::to_string(i) + "]"));
    const std::string& digest = descriptor.digest;
    if (descriptor.media_type == kMediaTypeIndex || descriptor.media_type == kMediaTypeDockerManifestList) {
      if (depth > 1) return Status::unsupported("image indexes nested deeper than two levels");
      if (!walk.indexes_read.insert(digest).second) continue;  // its manifests are listed already
      auto nested = QR_TRY(read_json_blob(walk.src, digest, "index", descriptor.size));
      size_t first = walk.manifests.size();
      QR_RETURN_IF_ERROR(collect_manifests(walk, nested, depth + 1));
      for (size_t j = first; j < walk.manifests.size(); ++j) {
        json& m = walk.manifests[j];
        if (!m.contains("annotations") && d.contains("annotations")) m["annotations"] = d["annotations"];
      }
    } else if (walk.manifests_listed.emplace(digest, platform_of(d)).second) {
      walk.manifests.push_back(d);
    }
  }
  return Status();
}

// The one descriptor `platform` picks (or the only image, when it is empty).
Result<json> choose_manifest(const std::vector<json>& manifests, const std::string& platform) {
  std::vector<json> chosen;
  std::set<std::string> chosen_digests;  // one manifest listed for several platforms is one image
  for (const auto& m : manifests) {
    if ((platform.empty() || platform_of(m) == platform || (platform_of(m).empty() && manifests.size() == 1)) &&
        chosen_digests.insert(m["digest"].get<std::string>()).second) {
      chosen.push_back(m);
    }
  }
  if (chosen.size() == 1) return chosen[0];
  std::string listed;
  for (const auto& m : manifests)
    listed += (listed.empty() ? "" : ", ") + (platform_of(m).empty() ? "?" : platform_of(m));
  if (manifests.empty()) return Status::bad_input("index.json lists no image");
  if (chosen.empty() && !platform.empty()) {
    return Status::bad_input("index.json has no image for platform " + platform + " (it has: " + listed + ")");
  }
  return Status::bad_input("index.json lists " + std::to_string(manifests.size()) + " images (" + listed +
                           "); choose one with --platform");
}

}  // namespace

Result<OciImage> read_oci_manifest(const ImageFiles& files, const std::string& digest, std::optional<uint64_t> size) {
  OciImage img;
  img.manifest_digest = digest;
  img.manifest = QR_TRY(read_json_blob(files, digest, "manifest", size));
  auto parsed = QR_TRY(parse_image_manifest(img.manifest, "manifest " + digest));
  img.config = QR_TRY(read_json_blob(files, parsed.config.digest, "config", parsed.config.size));
  QR_RETURN_IF_ERROR(check_image_config(img.config, "config " + parsed.config.digest));
  for (auto& l : parsed.layers) {
    OciLayer layer;
    layer.digest = std::move(l.digest);
    layer.file = QR_TRY(files.path_of("blobs/sha256/" + digest_hex(layer.digest), "layer " + layer.digest));
    std::error_code ec;
    uint64_t actual = std::filesystem::file_size(layer.file, ec);
    if (ec) return Status::io("layer " + layer.digest + ": " + layer.file.string() + ": " + ec.message());
    QR_RETURN_IF_ERROR(check_blob_size(actual, l.size, "layer", layer.digest));
    layer.media_type = std::move(l.media_type);
    img.layers.push_back(std::move(layer));
  }
  return img;
}

Result<OciImage> read_oci_layout(const ImageFiles& files, const std::string& platform) {
  auto index_bytes = QR_TRY(read_member(files, "index.json", "index.json"));
  auto index = QR_TRY(parse_json(index_bytes, "index.json"));
  IndexWalk walk(files);
  QR_RETURN_IF_ERROR(collect_manifests(walk, index, 0).with_context("index.json"));
  auto d = QR_TRY(choose_manifest(walk.manifests, platform));
  auto descriptor = QR_TRY(parse_descriptor(d, "index.json"));
  auto img = QR_TRY(read_oci_manifest(files, descriptor.digest, descriptor.size));
  if (auto ref = descriptor.annotations.find(kRefNameAnnotation); ref != descriptor.annotations.end()) {
    img.ref_name = ref->second;
  }
  return img;
}

}  // namespace quorate::normalize
