// resolve_image: a published image (a registry's, or an archive's) reduced to its manifest digest, content
// digest and diff_ids, each checked against the bytes skopeo copied.
#include "quorate/imagestore/resolve.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/process.h"
#include "quorate/core/sha256.h"
#include "quorate/core/temporaries.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/oci.h"
#include "skopeo.h"

namespace quorate::imagestore {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxJson = 4u << 20;

Result<std::string> file_digest(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::from_errno("open " + p.string(), errno);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  return h.finish_digest();
}

// A blob skopeo copied is its descriptor's: as many bytes as it says (skopeo does not check the size), hashing
// to its digest.
Status check_blob(const fs::path& p, const normalize::Descriptor& d, const std::string& what) {
  std::error_code ec;
  uint64_t size = fs::file_size(p, ec);
  if (ec) return Status::io(what + ": " + p.string() + ": " + ec.message());
  QR_RETURN_IF_ERROR(normalize::check_blob_size(size, d.size, what, d.digest));
  if (QR_TRY(file_digest(p)) != d.digest) return Status::bad_input(what + " does not hash to " + d.digest);
  return Status();
}

Result<std::string> pinned_digest(const std::string& reference) {
  auto at = reference.rfind('@');
  if (at == std::string::npos) {
    return Status::bad_input(reference +
                             ": a registry reference must be pinned by digest (docker://HOST/REPO@sha256:HEX): "
                             "a tag names no fixed image");
  }
  std::string d = reference.substr(at + 1);
  if (!check_digest(d).ok()) return Status::bad_input(reference + ": " + d + " is not a sha256:<64 hex> digest");
  return d;
}

}  // namespace

bool is_transport_reference(const std::string& s) {
  for (const char* t : {"docker://", "oci:", "oci-archive:", "docker-archive:", "dir:"}) {
    if (s.starts_with(t)) return true;
  }
  return false;
}

Result<ResolvedImage> resolve_image(const ResolveOptions& o) {
  if (!is_transport_reference(o.reference)) {
    return Status::usage(
        "image reference '" + o.reference +
        "': expected docker://HOST/REPO@sha256:HEX, oci:DIR[:REF], oci-archive:FILE, docker-archive:FILE or dir:DIR");
  }
  std::string pinned;
  if (o.reference.starts_with("docker://")) pinned = QR_TRY(pinned_digest(o.reference));
  std::error_code ec;
  if (o.skopeo.empty() || !fs::is_regular_file(o.skopeo, ec)) {
    return Status::not_found("skopeo is not installed: `apt-get install skopeo` (Debian package skopeo) to read " +
                             o.reference);
  }
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  std::optional<internal::PinnedManifest> declared;  // a registry's copy is bounded by what the pin declares
  if (!pinned.empty()) {
    const std::string name = o.reference.substr(9, o.reference.rfind('@') - 9);
    declared = QR_TRY(internal::inspect_pinned(o.skopeo, name, pinned, o.insecure_registry, deadline, o.timeout,
                                               "read " + o.reference));
  }
  auto tmp = QR_TRY(TempDir::create(o.temp_dir.empty() ? fs::temp_directory_path() : o.temp_dir, "quorate-resolve."));
  std::optional<DiskWatch> watch;
  if (declared) watch.emplace(internal::copy_watch(tmp.path(), *declared));
  ProcessSpec spec;
  spec.argv = {o.skopeo.string(), "copy", "--quiet"};
  if (o.insecure_registry) spec.argv.push_back("--src-tls-verify=false");
  spec.argv.push_back(o.reference);
  spec.argv.push_back("dir:" + (tmp.path() / "image").string());
  spec.deadline = deadline;
  spec.max_output_bytes = 64 << 10;
  if (watch) spec.stop = [&] { return watch->exceeded(); };
  auto run = QR_TRY(run_process(spec));
  if (!run.succeeded()) {
    std::string failure =
        internal::skopeo_failure(run, o.timeout, spec.max_output_bytes, watch ? watch->max_growth() : 0);
    if (run.ending == ProcessEnding::kStopped) return Status::bad_input("read " + o.reference + ": " + failure);
    return Status::io("read " + o.reference + ": " + failure);
  }
  fs::path dir = tmp.path() / "image";
  auto manifest_bytes = QR_TRY(read_file(dir / "manifest.json", kMaxJson));
  ResolvedImage out;
  out.manifest_digest = sha256_digest(manifest_bytes);
  if (!pinned.empty() && out.manifest_digest != pinned) {
    return Status::bad_input(o.reference + ": the registry served a manifest whose digest is " + out.manifest_digest +
                             ", not the pinned " + pinned + " (an index? pin one platform's manifest)");
  }
  QR_RETURN_IF_ERROR(check_json_depth(manifest_bytes, o.reference + ": the manifest"));
  json manifest = json::parse(manifest_bytes, nullptr, false);
  if (manifest.is_discarded()) return Status::bad_input(o.reference + ": the manifest is not JSON");
  auto parsed = normalize::parse_image_manifest(manifest, o.reference + ": the manifest");
  if (!parsed.ok() && parsed.status().code() == Code::kUnsupported) {
    return Status::bad_input(o.reference + ": the manifest is not one image's manifest (an index? pin one platform's)");
  }
  if (!parsed.ok()) return parsed.status();
  out.manifest_media_type = parsed->media_type;
  const std::string& config_digest = parsed->config.digest;
  fs::path config_path = dir / digest_hex(config_digest);
  QR_RETURN_IF_ERROR(check_blob(config_path, parsed->config, o.reference + ": the config"));
  auto config_bytes = QR_TRY(read_file(config_path, kMaxJson));
  QR_RETURN_IF_ERROR(check_json_depth(config_bytes, o.reference + ": the config"));
  json config = json::parse(config_bytes, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return Status::bad_input(o.reference + ": the config is not JSON");
  QR_RETURN_IF_ERROR(normalize::check_image_config(config, o.reference + ": the config"));
  if (!config.contains("rootfs") || !config["rootfs"].contains("diff_ids")) {
    return Status::bad_input(o.reference + ": the config has no rootfs.diff_ids");
  }
  const auto& diff_ids = config["rootfs"]["diff_ids"];
  const auto& layers = parsed->layers;
  if (diff_ids.size() != layers.size()) {
    return Status::bad_input(o.reference + ": the manifest lists " + std::to_string(layers.size()) +
                             " layers, the config " + std::to_string(diff_ids.size()) + " diff_ids");
  }
  // A layer listed twice is read once: a manifest naming one small bomb 128 times would otherwise be
  // decompressed 128 times over.
  std::map<std::string, std::string> uncompressed_of;
  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string& digest = layers[i].digest;
    const std::string where = o.reference + ": layer " + std::to_string(i);
    std::string diff_id = diff_ids[i].get<std::string>();
    if (!check_digest(diff_id).ok()) return Status::bad_input(where + ": malformed diff_id");
    auto known = uncompressed_of.find(digest);
    if (known == uncompressed_of.end()) {
      fs::path blob = dir / digest_hex(digest);
      QR_RETURN_IF_ERROR(check_blob(blob, layers[i], where));
      auto uncompressed = QR_TRY(normalize::decompressed_digest(blob, o.max_expanded_bytes));
      known = uncompressed_of.emplace(digest, std::move(uncompressed)).first;
    }
    if (known->second != diff_id) {
      return Status::bad_input(where + " (" + digest + ") decompresses to " + known->second +
                               ", not the config's diff_id " + diff_id);
    }
    out.diff_ids.push_back(diff_id);
  }
  out.config_digest = config_digest;
  return out;
}

}  // namespace quorate::imagestore
