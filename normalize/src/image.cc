// normalize_image: docker-archive / OCI layout / OCI tar in, canonical OCI layout out; every blob verified.
#include "quorate/normalize/image.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "archive_util.h"
#include "image_members.h"
#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/docker_archive.h"
#include "quorate/normalize/image_files.h"
#include "quorate/normalize/oci.h"

namespace quorate::normalize {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using internal::kMaxJsonBytes;
using internal::parse_json;
using internal::read_member;
constexpr char kDockerManifestList[] = "application/vnd.docker.distribution.manifest.list.v2+json";


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

// A blob of an OCI layout, checked against its digest.
Result<std::string> read_blob(const ImageFiles& src, const std::string& digest, const std::string& what) {
  if (!check_digest(digest).ok()) return Status::bad_input(what + ": malformed or unsupported digest \"" + digest + "\"");
  auto bytes = QR_TRY(read_member(src, "blobs/sha256/" + digest_hex(digest), what + " " + digest));
  std::string actual = sha256_digest(bytes);
  if (actual != digest) return Status::bad_input(what + " blob " + digest + " does not match its digest (holds " + actual + ")");
  return bytes;
}

std::string platform_of(const json& d) {
  if (!d.contains("platform") || !d["platform"].is_object()) return "";
  const json& p = d["platform"];
  std::string s = p.value("os", "") + "/" + p.value("architecture", "");
  if (p.contains("variant") && p["variant"].is_string()) s += "/" + p["variant"].get<std::string>();
  return s;
}

// At most this many descriptors are read from index.json and the indexes it lists, duplicates included.
// Real multi-platform indexes list tens; a flood (an index listing a nested index thousands of times, each
// listing a manifest thousands of times) is refused before it can grow memory.
constexpr size_t kMaxIndexDescriptors = 4096;

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
  for (const auto& d : index["manifests"]) {
    if (++walk.visited > kMaxIndexDescriptors) {
      return Status::bad_input("lists more than " + std::to_string(kMaxIndexDescriptors) +
                               " descriptors, counting those of the indexes it lists (the limit)");
    }
    if (!d.is_object() || !d.contains("digest") || !d["digest"].is_string()) {
      return Status::bad_input("index lists a descriptor without a digest");
    }
    std::string digest = d["digest"];
    std::string mt = d.contains("mediaType") && d["mediaType"].is_string() ? d["mediaType"].get<std::string>() : "";
    if (mt == kMediaTypeIndex || mt == kDockerManifestList) {
      if (depth > 1) return Status::unsupported("image indexes nested deeper than two levels");
      if (!walk.indexes_read.insert(digest).second) continue;  // its manifests are listed already
      auto bytes = QR_TRY(read_blob(walk.src, digest, "index"));
      auto nested = QR_TRY(parse_json(bytes, "index " + digest));
      size_t first = walk.manifests.size();
      QR_RETURN_IF_ERROR(collect_manifests(walk, nested, depth + 1));
      for (size_t i = first; i < walk.manifests.size(); ++i) {
        json& m = walk.manifests[i];
        if (!m.contains("annotations") && d.contains("annotations")) m["annotations"] = d["annotations"];
      }
    } else if (walk.manifests_listed.emplace(digest, platform_of(d)).second) {
      walk.manifests.push_back(d);
    }
  }
  return Status();
}

Result<InputImage> read_oci(const ImageFiles& src, const ImageOptions& opt) {
  auto index_bytes = QR_TRY(read_member(src, "index.json", "index.json"));
  auto index = QR_TRY(parse_json(index_bytes, "index.json"));
  IndexWalk walk(src);
  QR_RETURN_IF_ERROR(collect_manifests(walk, index, 0).with_context("index.json"));
  const std::vector<json>& manifests = walk.manifests;
  std::vector<json> chosen;
  std::set<std::string> chosen_digests;  // one manifest listed for several platforms is one image
  for (const auto& m : manifests) {
    if ((opt.platform.empty() || platform_of(m) == opt.platform ||
         (platform_of(m).empty() && manifests.size() == 1)) &&
        chosen_digests.insert(m["digest"].get<std::string>()).second) {
      chosen.push_back(m);
    }
  }
  if (chosen.size() != 1) {
    std::string listed;
    for (const auto& m : manifests) listed += (listed.empty() ? "" : ", ") + (platform_of(m).empty() ? "?" : platform_of(m));
    if (chosen.empty() && !opt.platform.empty()) {
      return Status::bad_input("index.json has no image for platform " + opt.platform + " (it has: " + listed + ")");
    }
    return Status::bad_input("index.json lists " + std::to_string(manifests.size()) + " images (" + listed +
                             "); choose one with --platform");
  }
  InputImage img;
  const json& d = chosen[0];
  img.manifest_digest = d["digest"];
  if (d.contains("annotations") && d["annotations"].is_object()) {
    img.ref_name = d["annotations"].value(kRefNameAnnotation, "");
  }
  auto manifest_bytes = QR_TRY(read_blob(src, img.manifest_digest, "manifest"));
  auto manifest = QR_TRY(parse_json(manifest_bytes, "manifest " + img.manifest_digest));
  try {
    auto config_bytes = QR_TRY(read_blob(src, manifest.at("config").at("digest").get<std::string>(), "config"));
    img.config = QR_TRY(parse_json(config_bytes, "config"));
    for (const auto& l : manifest.at("layers")) {
      std::string digest = l.at("digest");
      if (!check_digest(digest).ok()) return Status::bad_input("manifest: malformed or unsupported layer digest \"" + digest + "\"");
      auto p = QR_TRY(src.path_of("blobs/sha256/" + digest_hex(digest), "layer " + digest));
      img.layers.push_back({p, digest, "layer blob " + digest});
    }
  } catch (const json::exception& e) {
    return Status::bad_input("manifest " + img.manifest_digest + " is malformed: " + e.what());
  }
  return img;
}

Result<InputImage> read_docker(const ImageFiles& src) {
  auto images = QR_TRY(read_docker_archive(src));
  if (images.size() > 1) {
    return Status::bad_input("manifest.json lists " + std::to_string(images.size()) + " images; normalize one at a time");
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
  for (const auto& l : img.layers) {
    auto blob = QR_TRY(layout.begin_blob());
    LayerOptions one = lopt;
    one.hash_input = lopt.hash_input || !l.expected.empty();  // the digest check below needs it
    auto s = normalize_layer(l.path, *blob, one);
    if (!s.ok()) return s.status().with_context(l.what);
    if (!l.expected.empty() && s->input_digest != l.expected) {
      return Status::bad_input(l.what + " does not match its digest " + l.expected + " (holds " + s->input_digest + ")");
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
  try {
    json m = json::parse(bytes);
    return m.is_array() && !m.empty() && m[0].is_object() && m[0].contains("Config") && m[0].contains("Layers");
  } catch (const json::exception&) {
    return true;  // broken JSON in a manifest.json at the top: reported as a broken docker-archive
  }
}

TarTopLevel tar_top_level(const fs::path& input) {
  std::unique_ptr<struct archive, detail::ArchiveCloser> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_all(a.get());
  TarTopLevel top;
  if (archive_read_open_filename(a.get(), input.c_str(), 1 << 16) != ARCHIVE_OK) return top;
  for (;;) {
    struct archive_entry* ae = nullptr;
    int r = archive_read_next_header(a.get(), &ae);
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) break;
    const char* raw = detail::raw_path(ae);
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
    case ImageFormat::kDockerArchive: return "docker-archive";
    case ImageFormat::kOciLayout: return "oci";
    case ImageFormat::kOciArchive: return "oci-archive";
    case ImageFormat::kNotImage: return "none";
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

Result<ImageSummary> normalize_image(const fs::path& input, const fs::path& output_dir, const LayerOptions& layer_options,
                                     const ImageOptions& image_options) {
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
      src = QR_TRY(ImageFiles::extract(input, temp, layer_options.max_expanded_bytes));
    }
    auto img = summary.input_format == ImageFormat::kDockerArchive ? read_docker(*src) : read_oci(*src, image_options);
    if (!img.ok()) return img.status().with_context(input.string());
    return write_canonical(*img, output_dir, layer_options, image_options, std::move(summary));
  } catch (const std::exception& e) {  // std::filesystem and nlohmann throw; nothing escapes the module
    return Status::internal(std::string("normalize ") + input.string() + ": " + e.what());
  }
}

}  // namespace quorate::normalize
