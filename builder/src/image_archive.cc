// oci-archive and docker-archive: both are canonical uncompressed tars written by the normalize layer writer.
#include "image_archive.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <vector>

#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/oci.h"

namespace quorate::builder {
namespace {

normalize::LayerOptions tar_options(int64_t epoch, const std::filesystem::path& temp_dir) {
  normalize::LayerOptions o;
  o.source_date_epoch = epoch;
  o.mtime = normalize::MtimeMode::kSet;
  o.compression = normalize::Compression::kNone;
  o.temp_dir = temp_dir;
  return o;
}

normalize::Entry dir_entry(const std::string& path) {
  normalize::Entry e;
  e.path = path;
  e.type = normalize::EntryType::kDirectory;
  e.mode = 0755;
  return e;
}

normalize::Entry file_entry(const std::string& path) {
  normalize::Entry e;
  e.path = path;
  e.mode = 0644;
  return e;
}

Status write_tar(normalize::CanonicalLayerWriter& writer, const std::filesystem::path& target) {
  auto file = QR_TRY(AtomicFile::create(target, 0644));
  auto summary = writer.write(*file);
  if (!summary.ok()) return summary.status().with_context(target.string());
  QR_RETURN_IF_ERROR(file->finish());
  return file->commit();
}

// Decompresses a layer blob (gzip, zstd or none, told by content) into `dest`; returns its diff_id.
Result<std::string> decompress(const std::filesystem::path& blob, const std::filesystem::path& dest) {
  auto file = QR_TRY(AtomicFile::create(dest));
  auto digest = QR_TRY(normalize::decompressed_digest(blob, std::numeric_limits<uint64_t>::max(), file.get()));
  QR_RETURN_IF_ERROR(file->commit());
  return digest;
}

}  // namespace

Status write_oci_archive(const std::filesystem::path& layout, const std::filesystem::path& target, int64_t epoch,
                         const std::filesystem::path& temp_dir, const std::string& ref_name) {
  normalize::CanonicalLayerWriter writer(tar_options(epoch, temp_dir));
  // The archive's index names the image by its full reference (NAME:TAG), as buildah and skopeo write
  // oci-archives, so that `podman load` and `skopeo inspect oci-archive:F` find it; the layout directory keeps
  // the bare tag umoci needs (docs/decisions.md).
  std::filesystem::path index_copy = temp_dir / "oci-archive-index.json";
  if (!ref_name.empty()) {
    auto index = nlohmann::json::parse(QR_TRY(read_file(layout / "index.json")), nullptr, false);
    if (index.is_discarded() || !index.contains("manifests"))
      return Status::internal("re-read index.json of " + layout.string());
    for (auto& m : index["manifests"]) m["annotations"][normalize::kRefNameAnnotation] = ref_name;
    QR_RETURN_IF_ERROR(write_file_atomic(index_copy, QR_TRY(canonical_json(index, "index.json")), 0644));
  }
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(layout, ec); !ec && it != decltype(it)();
       it.increment(ec)) {
    std::string rel = std::filesystem::relative(it->path(), layout, ec).string();
    if (it->is_directory()) {
      QR_RETURN_IF_ERROR(writer.add(dir_entry(rel)));
    } else if (rel == "index.json" && !ref_name.empty()) {
      QR_RETURN_IF_ERROR(writer.add_file(file_entry(rel), index_copy));
    } else {
      QR_RETURN_IF_ERROR(writer.add_file(file_entry(rel), it->path()));
    }
  }
  if (ec) return Status::io("read " + layout.string() + ": " + ec.message());
  return write_tar(writer, target);
}

Status write_docker_archive(const std::filesystem::path& layout, const std::string& manifest_digest,
                            const std::string& repo_tag, const std::filesystem::path& target, int64_t epoch,
                            const std::filesystem::path& temp_dir) {
  auto blobs = layout / "blobs" / "sha256";
  nlohmann::json manifest, config;
  try {
    auto manifest_bytes = QR_TRY(read_file(blobs / digest_hex(manifest_digest)));
    manifest = nlohmann::json::parse(manifest_bytes);
    std::string config_digest = manifest.at("config").at("digest");
    auto config_bytes = QR_TRY(read_file(blobs / digest_hex(config_digest)));
    config = nlohmann::json::parse(config_bytes);
  } catch (const nlohmann::json::exception& e) {
    return Status::internal(std::string("re-read the image for docker-archive: ") + e.what());
  }
  normalize::CanonicalLayerWriter writer(tar_options(epoch, temp_dir));
  std::string config_name = digest_hex(manifest["config"]["digest"].get<std::string>()) + ".json";
  QR_RETURN_IF_ERROR(writer.add_file(file_entry(config_name), blobs / config_name.substr(0, config_name.size() - 5)));
  nlohmann::json layer_names = nlohmann::json::array();
  const auto& diff_ids = config["rootfs"]["diff_ids"];
  for (size_t i = 0; i < manifest["layers"].size(); ++i) {
    std::string digest = manifest["layers"][i]["digest"];
    std::string diff_id = diff_ids.at(i);
    auto spool = temp_dir / ("docker-layer-" + std::to_string(i) + ".tar");
    auto actual = QR_TRY(decompress(blobs / digest_hex(digest), spool));
    if (actual != diff_id) {
      return Status::bad_input("layer " + digest + " decompresses to " + actual + ", not its diff_id " + diff_id);
    }
    std::string dir = digest_hex(diff_id);
    QR_RETURN_IF_ERROR(writer.add(dir_entry(dir)));
    QR_RETURN_IF_ERROR(writer.add_file(file_entry(dir + "/layer.tar"), spool));
    layer_names.push_back(dir + "/layer.tar");
  }
  nlohmann::json docker_manifest = nlohmann::json::array(
      {{{"Config", config_name}, {"RepoTags", nlohmann::json::array({repo_tag})}, {"Layers", layer_names}}});
  QR_RETURN_IF_ERROR(writer.add_bytes(file_entry("manifest.json"), docker_manifest.dump()));
  return write_tar(writer, target);
}

}  // namespace quorate::builder
