// OCI image layouts: descriptors, canonical JSON, and a writer for `oci-layout`, `index.json`, `blobs/`.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/json.h"
#include "quorate/core/sink.h"
#include "quorate/core/status.h"

namespace quorate::normalize {

inline constexpr char kMediaTypeManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kMediaTypeIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kMediaTypeConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kMediaTypeDockerManifestList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
  std::map<std::string, std::string> annotations;
  nlohmann::json to_json() const;
};

// A descriptor read from outside (an index, a manifest): an object whose `digest` is "sha256:<64 hex>", whose
// `size` is an integer from 0 to 2^63-1, and whose `mediaType` and `annotations` (each optional) are a string
// and an object of strings. bad_input "<where>: …" naming the field otherwise; never a JSON exception.
Result<Descriptor> parse_descriptor(const nlohmann::json& d, const std::string& where);

// The bytes of a blob are as many as its descriptor says (OCI: content of another length is not to be trusted;
// containerd refuses it). bad_input "<what> blob <digest> is N bytes; its descriptor says M" otherwise.
Status check_blob_size(uint64_t actual, uint64_t size, const std::string& what, const std::string& digest);

// One image's manifest read from outside: its mediaType (empty when absent), config and layer descriptors
// (parse_descriptor), at most kMaxLayers of them. unsupported for an image index (pin one platform's
// manifest); bad_input "<where>: …" naming what is wrong otherwise.
struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};
Result<ImageManifest> parse_image_manifest(const nlohmann::json& m, const std::string& where);

// An image config read from outside (a base image, a builder image, an image to normalize): the fields the
// OCI image spec defines have their types, where present. Strings: os, architecture, variant, os.version,
// created, author, config.User, config.WorkingDir, config.StopSignal. Arrays of strings or null: os.features,
// config.Env, config.Entrypoint, config.Cmd, config.Shell, config.OnBuild. Objects or null: config.ExposedPorts,
// config.Volumes, config.Healthcheck; config.Labels an object of strings or null. rootfs an object with
// diff_ids an array of strings; history an array of objects whose created, author, created_by and comment
// are strings and empty_layer a boolean. Other fields are not looked at. bad_input "<where>: config field
// "<name>" is <what it is>, not <what it must be>" otherwise.
Status check_image_config(const nlohmann::json& config, const std::string& where);

// A blob being streamed into a layout; its digest is known at commit(). Not thread-safe.
class BlobWriter final : public Sink {
 public:
  ~BlobWriter() override;
  Status write(std::span<const uint8_t> bytes) override;
  using Sink::write;
  // fsyncs the blob, renames it to blobs/sha256/<hex> and returns its descriptor (no annotations). Until
  // then it is a hidden temporary in blobs/sha256/, removed if the writer is destroyed uncommitted.
  Result<Descriptor> commit(std::string media_type);

 private:
  friend class OciLayoutWriter;
  struct Impl;
  explicit BlobWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes an OCI image layout into an existing directory (typically an AtomicDir's path). Not thread-safe.
class OciLayoutWriter {
 public:
  // Creates `oci-layout` ({"imageLayoutVersion":"1.0.0"}) and `blobs/sha256/` in `dir`, which must exist: it is
  // never made here, so a layout an interrupt removed is not made again. An error naming `dir` on failure.
  static Result<OciLayoutWriter> open(const std::filesystem::path& dir);

  Result<Descriptor> add_blob(std::string_view media_type, std::string_view bytes);
  // The file at `path` as a blob, streamed through a bounded buffer (never held whole): bad_input "<path> is
  // larger than the limit of <max_bytes> bytes" when it holds more. Its digest is what the bytes hash to.
  Result<Descriptor> add_blob_file(std::string_view media_type, const std::filesystem::path& path, uint64_t max_bytes);
  Result<std::unique_ptr<BlobWriter>> begin_blob();
  // Writes index.json (atomically) listing `manifest`, annotated with org.opencontainers.image.ref.name =
  // ref_name (omitted when empty; umoci and skopeo find a tag only through it).
  Status write_index(Descriptor manifest, const std::string& ref_name);
  const std::filesystem::path& dir() const { return dir_; }

 private:
  explicit OciLayoutWriter(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

// The manifest JSON for a config and layers (schemaVersion 2, OCI manifest media type), in canonical form.
Result<std::string> make_manifest(const Descriptor& config, const std::vector<Descriptor>& layers);

}  // namespace quorate::normalize
