// A docker-archive (`docker save`: manifest.json, config, layer tars) into the store. It has no OCI manifest,
// so the store writes one: canonical JSON (normalize::make_manifest) over docker's config bytes and layer
// files as saved, never re-normalized, so one archive always gives one digest.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <set>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/docker_archive.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/oci.h"
#include "store_internal.h"

namespace quorate::imagestore::internal {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

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

// The layer as saved, under the digest its name promises (else its diff_id); the copy checks the bytes, once
// an import (`copied`), however many entries of manifest.json list the layer.
Result<normalize::Descriptor> import_layer(const fs::path& store, const normalize::DockerLayer& layer,
                                           std::set<std::string>& copied) {
  if (!copied.count(layer.digest)) {
    QR_RETURN_IF_ERROR(copy_blob(store, layer.file, layer.digest, "layer " + layer.name));
    copied.insert(layer.digest);
  }
  std::error_code ec;
  uint64_t size = fs::file_size(layer.file, ec);
  if (ec) return Status::io("size of " + layer.file.string() + ": " + ec.message());
  auto media_type = QR_TRY(layer_media_type(layer.file));
  return normalize::Descriptor{media_type, layer.digest, size, {}};
}

Result<StoredImage> import_one(const fs::path& store, const normalize::DockerImage& image,
                               std::set<std::string>& copied) {
  auto written = write_blob(store, image.config_bytes);
  if (!written.ok()) return written.status();
  normalize::Descriptor config{normalize::kMediaTypeConfig, image.config_digest, image.config_bytes.size(), {}};
  std::vector<normalize::Descriptor> layers;
  for (const auto& layer : image.layers) layers.push_back(QR_TRY(import_layer(store, layer, copied)));
  std::string manifest = QR_TRY(normalize::make_manifest(config, layers));
  StoredImage out;
  out.digest = QR_TRY(write_blob(store, manifest));
  out.size = manifest.size();
  out.ref_name = image.repo_tag;
  return out;
}

}  // namespace

Result<std::vector<StoredImage>> import_docker_files(const fs::path& store, const normalize::ImageFiles& files,
                                                     const std::string& source) {
  auto images = normalize::read_docker_archive(files);
  if (!images.ok()) return images.status().with_context(source);
  std::vector<StoredImage> out;
  std::set<std::string> copied;
  for (const auto& image : *images) {
    auto stored = import_one(store, image, copied);
    if (!stored.ok()) return stored.status().with_context(source);
    out.push_back(std::move(*stored));
  }
  return out;
}

}  // namespace quorate::imagestore::internal
