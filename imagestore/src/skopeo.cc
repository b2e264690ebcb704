// inspect_pinned and copy_watch: a registry's copy bounded by what the pinned manifest declares.
#include "skopeo.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/oci.h"

namespace quorate::imagestore::internal {
namespace {

constexpr size_t kMaxManifestBytes = 4u << 20;  // containers/image's own bound on a manifest
constexpr size_t kMaxShown = 16u << 10;         // of skopeo's output, in an error

// An index's platform field as shown in an error: a short word of [a-z0-9._-], else "?" (the index is the
// registry's text, and a terminal shows the message).
std::string platform_word(const nlohmann::json& platform, const char* key) {
  auto it = platform.find(key);
  if (it == platform.end() || !it->is_string()) return "?";
  const std::string& word = it->get_ref<const std::string&>();
  const bool plain = !word.empty() && word.size() <= 32 && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
  return plain ? word : "?";
}

}  // namespace

std::string skopeo_failure(const ProcessResult& run, std::chrono::seconds timeout, size_t max_output,
                           uint64_t watched_bytes) {
  std::string how = run.ending == ProcessEnding::kTimedOut
                        ? "still ran after " + std::to_string(timeout.count()) + " s and was killed"
                    : run.ending == ProcessEnding::kOutputCut
                        ? "wrote more than " + std::to_string(max_output) + " bytes of output and was killed"
                    : run.ending == ProcessEnding::kStopped
                        ? "was killed: the registry sent more than " + std::to_string(watched_bytes) +
                              " bytes (twice what the pinned manifest's config and layers declare, and 64 MiB)"
                        : describe_wait_status(run.wait_status);
  std::string out = run.output.substr(0, kMaxShown);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return "skopeo " + how + (out.empty() ? "" : ": " + out);
}

Result<PinnedManifest> inspect_pinned(const std::filesystem::path& skopeo, const std::string& name,
                                      const std::string& digest, bool insecure_registry,
                                      std::chrono::steady_clock::time_point deadline, std::chrono::seconds timeout,
                                      const std::string& what) {
  ProcessSpec spec;
  spec.argv = {skopeo.string(), "inspect", "--raw"};
  if (insecure_registry) spec.argv.push_back("--tls-verify=false");
  spec.argv.push_back("docker://" + name + "@" + digest);
  spec.stderr_to = Stderr::kDiscard;  // a warning there would be taken for the manifest's bytes
  spec.max_output_bytes = kMaxManifestBytes + 1;
  spec.deadline = deadline;
  auto run = QR_TRY(run_process(spec));
  if (!run.succeeded()) {
    if (run.ending == ProcessEnding::kExited) {  // asked again for what it says on stderr
      spec.stderr_to = Stderr::kWithStdout;
      run = QR_TRY(run_process(spec));
    }
    if (!run.succeeded()) return Status::io(what + ": " + skopeo_failure(run, timeout, kMaxManifestBytes, 0));
  }
  PinnedManifest out;
  out.bytes = std::move(run.output);
  const std::string served = sha256_digest(out.bytes);
  if (served != digest) {
    return Status::bad_input(what + ": the registry served a manifest whose digest is " + served + ", not the pinned " +
                             digest);
  }
  QR_RETURN_IF_ERROR(check_json_depth(out.bytes, what + ": the manifest"));
  nlohmann::json manifest = nlohmann::json::parse(out.bytes, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object()) return Status::bad_input(what + ": the manifest is not JSON");
  if (manifest.contains("manifests")) {
    std::string listed;
    size_t count = 0;
    if (manifest["manifests"].is_array()) {
      for (const auto& m : manifest["manifests"]) {
        if (++count > 8 || !m.is_object() || !m.contains("digest") || !m["digest"].is_string() ||
            !check_digest(m["digest"].get<std::string>()).ok()) {
          continue;
        }
        std::string platform;
        if (m.contains("platform") && m["platform"].is_object()) {
          platform =
              " (" + platform_word(m["platform"], "os") + "/" + platform_word(m["platform"], "architecture") + ")";
        }
        listed += (listed.empty() ? "" : ", ") + m["digest"].get<std::string>() + platform;
      }
    }
    return Status::bad_input(what + ": the pinned " + digest + " is an index of " + std::to_string(count) +
                             " manifest(s)" + (listed.empty() ? "" : ": " + listed + (count > 8 ? ", …" : "")) +
                             "; pin one platform's manifest");
  }
  auto parsed = QR_TRY(normalize::parse_image_manifest(manifest, what + ": the manifest"));
  std::set<std::string> counted;
  auto add = [&](uint64_t size) {
    out.blob_bytes = size > UINT64_MAX - out.blob_bytes ? UINT64_MAX : out.blob_bytes + size;
  };
  add(parsed.config.size);
  for (const auto& l : parsed.layers) {
    if (counted.insert(l.digest).second) add(l.size);
  }
  return out;
}

DiskWatch copy_watch(const std::filesystem::path& dir, const PinnedManifest& manifest) {
  const uint64_t declared = manifest.blob_bytes + manifest.bytes.size();
  const uint64_t bound = declared > (UINT64_MAX - (64u << 20)) / 2 ? UINT64_MAX : 2 * declared + (64u << 20);
  return DiskWatch({dir}, bound, std::chrono::milliseconds(10));
}

}  // namespace quorate::imagestore::internal
