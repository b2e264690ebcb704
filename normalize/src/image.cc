// normalize_image: docker-archive / OCI layout / OCI tar in, canonical OCI layout out; every blob verified.
#include "quorate/normalize/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "archive_util.h"
#include "image_members.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/time.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/docker_archive.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/oci.h"
#include "quorate/normalize/oci_layout.h"

namespace quorate::normalize {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using internal::kMaxJsonBytes;

// ---- the image as read ----

struct InputLayer {
  fs::path path;
  std::string expected;  // digest the input bytes must have ("" when the archive names none)
  std::string what;      // how errors name it
};

struct InputImage {
  json config;
  std::string manifest_digest;
  std::string ref_name;
  std::vector<InputLayer> layers;
};

std::string tag_of(const std::string& repo_tag) {
  size_t colon = repo_tag.rfind(':');
  if (colon == std::string::npos || repo_tag.find('/', colon) != std::string::npos) return "latest";
  return repo_tag.substr(colon + 1);
}

Result<InputImage> read_oci(const ImageFiles& src, const ImageOptions& opt) {
  auto oci = QR_TRY(read_oci_layout(src, opt.platform));
  InputImage img;
  img.manifest_digest = std::move(oci.manifest_digest);
  img.ref_name = std::move(oci.ref_name);
  img.config = std::move(oci.config);
  for (auto& l : oci.layers) img.layers.push_back({std::move(l.file), l.digest, "layer blob " + l.digest});
  return img;
}

Result<InputImage> read_docker(const ImageFiles& src) {
  auto images = QR_TRY(read_docker_archive(src));
  if (images.size() > 1) {
    return Status::bad_input("manifest.json lists " + std::to_string(images.size()) +
                             " images; normalize one at a time");
  }
  DockerImage& d = images[0];
  InputImage img;
  img.manifest_digest = d.config_digest;  // docker's image id
  img.config = std::move(d.config);
  if (!d.repo_tag.empty()) img.ref_name = tag_of(d.repo_tag);
  for (auto& l : d.layers) img.layers.push_back({std::move(l.file), std::move(l.digest), "layer " + l.name});
  return img;
}

// ---- the canonical config ----

// Fields that record the machine or daemon that built an image, not the image: dropped.
constexpr const char* kHostFields[] = {"container", "container_config", "docker_version", "id", "parent", "Size"};
constexpr const char* kHostConfigFields[] = {"Hostname", "Domainname", "Image"};

Result<json> canonical_config(json config, const std::vector<LayerSummary>& layers, int64_t epoch) {
  if (!config.is_object()) return Status::bad_input("config is not a JSON object");
  std::string created = format_rfc3339(epoch);
  for (const char* f : kHostFields) config.erase(f);
  if (config.contains("config") && config["config"].is_object()) {
    for (const char* f : kHostConfigFields) config["config"].erase(f);
  }
  config["created"] = created;
  if (config.contains("history") && config["history"].is_array()) {
    for (auto& h : config["history"]) {
      if (h.is_object()) h["created"] = created;
    }
  }
  json diff_ids = json::array();
  for (const auto& l : layers) diff_ids.push_back(l.diff_id);
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
  return config;
}

Result<ImageSummary> write_canonical(const InputImage& img, const fs::path& output_dir, const LayerOptions& lopt,
                                     const ImageOptions& iopt, ImageSummary summary) {
  auto out = QR_TRY(AtomicDir::create(output_dir));
  auto layout = QR_TRY(OciLayoutWriter::open(out.path()));
  std::vector<Descriptor> descriptors;
  // A layer file listed again (with the same expected digest) is the same canonical layer: normalizing is
  // deterministic, so it is written once and listed again. One small layer that expands a lot, listed 128
  // times, was read and compressed 128 times.
  std::map<std::pair<fs::path, std::string>, size_t> done;  // (file, expected digest) -> its first position
  // What the distinct layers expand to together, counted as they are read: 128 small layers that each expand
  // to just under the per-layer limit took 128 times its time and spool.
  ExpandedTotal total(std::max(iopt.max_total_expanded_bytes, lopt.max_expanded_bytes), "the image's layers");
  for (const auto& l : img.layers) {
    if (auto again = done.find({l.path, l.expected}); again != done.end()) {
      descriptors.push_back(descriptors[again->second]);
      summary.layers.push_back(summary.layers[again->second]);
      continue;
    }
    done.emplace(std::make_pair(l.path, l.expected), descriptors.size());
    auto blob = QR_TRY(layout.begin_blob());
    LayerOptions one = lopt;
    one.hash_input = lopt.hash_input || !l.expected.empty();  // the digest check below needs it
    auto s = normalize_layer(l.path, *blob, one, &total);
    if (!s.ok()) return s.status().with_context(l.what);
    if (!l.expected.empty() && s->input_digest != l.expected) {
      return Status::bad_input(l.what + " does not match its digest " + l.expected + " (holds " + s->input_digest +
                               ")");
    }
    descriptors.push_back(QR_TRY(blob->commit(s->media_type)));
    summary.layers.push_back(std::move(s).value());
  }
  auto config = QR_TRY(canonical_config(img.config, summary.layers, lopt.source_date_epoch));
  auto config_bytes = QR_TRY(canonical_json(config, "config"));
  auto config_desc = QR_TRY(layout.add_blob(kMediaTypeConfig, config_bytes));
  auto manifest_bytes = QR_TRY(make_manifest(config_desc, descriptors));
  auto manifest = QR_TRY(layout.add_blob(kMediaTypeManifest, manifest_bytes));
  summary.ref_name = !iopt.ref_name.empty() ? iopt.ref_name : !img.ref_name.empty() ? img.ref_name : "latest";
  QR_RETURN_IF_ERROR(layout.write_index(manifest, summary.ref_name));
  QR_RETURN_IF_ERROR(out.commit());
  summary.manifest_digest = manifest.digest;
  summary.manifest_size = manifest.size;
  summary.config_digest = config_desc.digest;
  summary.input_manifest_digest = img.manifest_digest;
  return summary;
}

// What the top level of a tar says about it: whether it holds oci-layout and index.json, and whether its
// manifest.json looks like `docker save`'s (an array of objects with "Config" and "Layers").
struct TarTopLevel {
  bool oci_layout = false;
  bool index_json = false;
  bool docker_manifest = false;
};

bool looks_like_docker_manifest(const std::string& bytes) {
  if (!check_json_depth(bytes, "").ok()) return true;  // reported as a broken docker-archive
  try {
    json m = json::parse(bytes);
    return m.is_array() && !m.empty() && m[0].is_object() && m[0].contains("Config") && m[0].contains("Layers");
  } catch (const json::exception&) {
    return true;  // broken JSON in a manifest.json at the top: reported as a broken docker-archive
  }
}

TarTopLevel tar_top_level(const fs::path& input) {
  TarTopLevel top;
  auto opened = open_tar(input);
  if (!opened.ok()) return top;
  ArchivePtr a = std::move(opened).value();
  // An image archive has at most kMaxArchiveMembers members (its extraction refuses more), each with a short
  // name: past either, the tar is a layer, and is not read further here (a layer of 3,000 pax names of 990 KB
  // each, 3 MB of gzip, took 45 s to probe before normalize refused it at its first entry).
  for (uint64_t members = 0; members < ImageFiles::kMaxArchiveMembers; ++members) {
    auto next = next_entry(a.get(), input.string());
    if (!next.ok() || *next == nullptr) break;
    struct archive_entry* ae = *next;
    const char* raw = raw_path(ae);
    if (raw != nullptr && std::strlen(raw) > ImageFiles::kMaxMemberName) break;
    auto name = canonical_path(raw ? raw : "");
    if (!name.ok()) continue;
    if (*name == "oci-layout") top.oci_layout = true;
    if (*name == "index.json") top.index_json = true;
    if (*name == "manifest.json" && archive_entry_filetype(ae) == AE_IFREG && archive_entry_size(ae) >= 0 &&
        static_cast<uint64_t>(archive_entry_size(ae)) < kMaxJsonBytes) {
      std::string bytes(static_cast<size_t>(archive_entry_size(ae)), '\0');
      la_ssize_t n = archive_read_data(a.get(), bytes.data(), bytes.size());
      if (n >= 0) bytes.resize(static_cast<size_t>(n));
      top.docker_manifest = looks_like_docker_manifest(bytes);
    }
  }
  return top;
}

}  // namespace

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kDockerArchive:
      return "docker-archive";
    case ImageFormat::kOciLayout:
      return "oci";
    case ImageFormat::kOciArchive:
      return "oci-archive";
    case ImageFormat::kNotImage:
      return "none";
  }
  return "?";
}

Result<ImageFormat> detect_image_format(const fs::path& input) {
  std::error_code ec;
  auto st = fs::status(input, ec);
  if (ec || !fs::exists(st)) return Status::not_found("no such file or directory: " + input.string());
  if (fs::is_directory(st)) {
    if (fs::exists(input / "index.json", ec)) return ImageFormat::kOciLayout;
    return Status::bad_input(input.string() + " is a directory without index.json, not an OCI image layout");
  }
  TarTopLevel top = tar_top_level(input);
  if (top.oci_layout && top.index_json) return ImageFormat::kOciArchive;
  if (top.docker_manifest) return ImageFormat::kDockerArchive;
  return ImageFormat::kNotImage;
}

Result<ImageSummary> normalize_image(const fs::path& input, const fs::path& output_dir,
                                     const LayerOptions& layer_options, const ImageOptions& image_options) {
  QR_RETURN_IF_ERROR(check_source_date_epoch(layer_options.source_date_epoch));
  try {
    ImageSummary summary;
    summary.input_format = QR_TRY(detect_image_format(input));
    std::unique_ptr<ImageFiles> src;
    if (summary.input_format == ImageFormat::kNotImage) {
      return Status::bad_input(input.string() + " is not a docker-archive, an OCI layout or an OCI layout tar");
    }
    if (summary.input_format == ImageFormat::kOciLayout) {
      src = QR_TRY(ImageFiles::open_dir(input));
    } else {
      fs::path temp = image_options.temp_dir.empty() ? layer_options.temp_dir : image_options.temp_dir;
      // The tar's members are the image's blobs: they are bounded as the image's layers are together, not as one
      // layer (a 15 GB docker-archive of uncompressed layers was refused at 8 GiB by default).
      src = QR_TRY(ImageFiles::extract(
          input, temp, std::max(image_options.max_total_expanded_bytes, layer_options.max_expanded_bytes)));
    }
    auto img = summary.input_format == ImageFormat::kDockerArchive ? read_docker(*src) : read_oci(*src, image_options);
    if (!img.ok()) return img.status().with_context(input.string());
    return write_canonical(*img, output_dir, layer_options, image_options, std::move(summary));
  } catch (const std::exception& e) {  // std::filesystem and nlohmann throw; nothing escapes the module
    return Status::internal(std::string("normalize ") + input.string() + ": " + e.what());
  }
}

}  // namespace quorate::normalize
