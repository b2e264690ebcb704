// `quorate build` as a library call: a commit and its recipe in, a canonical OCI image and a build result out.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quorate/builder/sandbox.h"
#include "quorate/core/status.h"

namespace quorate::builder {

enum class OutputFormat {
  kOci,            // an OCI image layout directory
  kOciArchive,     // a tar of that layout (podman load, skopeo oci-archive:)
  kDockerArchive,  // manifest.json + config + uncompressed layers (docker load, skopeo docker-archive:)
};
const char* format_name(OutputFormat f);  // "oci", "oci-archive", "docker-archive"
bool parse_format(const std::string& name, OutputFormat& out);

struct BuildOptions {
  std::string repo;    // local repository path or clonable URL; also the result's source.uri
  std::string commit;  // any revision libgit2 resolves
  // Inside the commit. A file named Containerfile, Dockerfile, *.Containerfile or *.Dockerfile is a
  // Containerfile (docs/containerfile.md); empty picks quorate.toml, else Containerfile, else Dockerfile.
  std::string recipe_path = "quorate.toml";
  // Containerfile builds: `--build-arg K=V` values (each must be declared by an ARG; recorded in the result)
  // and the image's tag (empty = "latest"); the name is image_name.
  std::map<std::string, std::string> build_args;
  std::string image_tag;
  std::filesystem::path output;  // the target; must not exist (or be an empty directory)
  OutputFormat format = OutputFormat::kOci;
  std::optional<int64_t> source_date_epoch;  // default: the commit's committer time
  std::string image_name;                    // overrides the recipe's image name when set
  // Scratch space (clones, checkouts, step outputs, spools, the build log); required. A fresh
  // subdirectory is used and removed afterwards, unless keep_work_dir.
  std::filesystem::path work_dir;
  bool keep_work_dir = false;
  // Where a failed build's log is kept, as build-XXXXXX.log (moved there atomically; created 0700 when
  // absent). Empty: beside the scratch directory, WORK_DIR/build-XXXXXX.log. A node, which removes its job
  // directories, passes its own state directory.
  std::filesystem::path failed_log_dir;
  // Where a recipe's relative base.layout is resolved; base_layout overrides the recipe's layout.
  std::filesystem::path base_dir;
  std::filesystem::path base_layout;
  Sandbox sandbox = Sandbox::kBubblewrap;
  std::filesystem::path bwrap = "/usr/bin/bwrap";
  // Limits on what a build may cost (issue 11, item 10). Exceeding one fails the build with bad_input naming
  // the limit; every process of a running step is killed and nothing is written to the output.
  // The timeout is wall time of the whole build from build()'s start (monotonic clock), checked between steps
  // and for each file a step copies or a layer holds. The byte limit counts the regular files in all run
  // steps' $OUT and all copy steps together (a Containerfile: its final stage's layers, and separately what
  // COPY and ADD write over all stages).
  std::chrono::seconds timeout{3600};
  uint64_t max_output_bytes = uint64_t{4} << 30;
  // Where builder images ([build] image) are looked up (docs/image-store.md); required by recipes that
  // name one. The CLI passes $XDG_CACHE_HOME/quorate/images by default.
  std::filesystem::path image_store;
  // PATH of run steps when the recipe sets none.
  std::string default_path = "/usr/local/bin:/usr/bin:/bin";
  int threads = 0;  // compression threads, 0 = one per core; never changes output bytes
  // Wall clock in milliseconds since the epoch, only for started_on/finished_on; empty = both left out.
  std::function<int64_t()> clock_ms;
  // Progress lines ("step 2/3: run …"); may be empty.
  std::function<void(const std::string&)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

struct LayerInfo {
  std::string digest;
  uint64_t size = 0;
  std::string media_type;
  std::string diff_id;
  bool from_base = false;
};

// What a build produced and every input that reached it (docs/build-result.md).
struct BuildResult {
  std::string image_name;       // recipe name (or override)
  std::string ref_name;         // the index's org.opencontainers.image.ref.name (the tag)
  std::string manifest_digest;  // the image digest
  uint64_t manifest_size = 0;
  std::string config_digest;  // the content digest
  std::vector<LayerInfo> layers;
  std::string source_uri, commit, tree, recipe_path;
  std::string source_locator;                     // the repository as an absolute path (local) or URL: source.locator
  std::string source_public_uri;                  // the recipe's [image] source, when set: source.public_uri
  std::string recipe_kind = "quorate.toml";       // or "containerfile"
  std::map<std::string, std::string> build_args;  // Containerfile --build-arg values
  std::vector<std::pair<std::string, std::string>> base_images;      // name, manifest digest
  std::optional<std::pair<std::string, std::string>> builder_image;  // name, manifest digest; none = host
  std::string os, architecture, variant;
  int64_t source_date_epoch = 0;
  std::string compressor;                          // "gzip zlib 1.2.13 level 6"
  std::map<std::string, std::string> toolchain;    // quorate, libgit2, libarchive, zlib, zstd
  std::map<std::string, std::string> tools;        // recipe's build.tools -> first line of `tool --version`
  std::map<std::string, std::string> environment;  // what run steps saw (before per-step env)
  std::string sandbox;                             // "bubblewrap" or "none"
  // Where run steps executed: "image" (the pinned builder image), "host" (the build machine's toolchain), or
  // "none" (the recipe has no run step). A policy may refuse "host" votes (docs/policy.md).
  std::string run_environment;
  std::optional<int64_t> started_ms, finished_ms;
  std::filesystem::path output;
  std::string format;
};

// Runs the whole pipeline. Nothing appears at options.output unless the build succeeds. Errors name what
// failed: bad_input for recipes ("file:line: 'key' …"), failing steps (exit status and log tail) and base
// images whose bytes do not match their pin; not_found for a missing repository, commit or recipe;
// unsupported for a sandbox that cannot run; io for the file system.
Result<BuildResult> build(const BuildOptions& options);

// One message per [build] tool whose `--version` failed or printed nothing where the run steps ran: the result
// records it with an empty version, and whoever ran the build should hear of it then, not from an auditor
// later (`quorate build` prints them on stderr, the node logs them at warn).
std::vector<std::string> tool_warnings(const BuildResult& result);

// The build result as canonical JSON (docs/build-result.md), without a trailing newline. bad_input when a
// string in it is not valid UTF-8 (a repository path given as other bytes, for example).
Result<std::string> build_result_json(const BuildResult& result);

}  // namespace quorate::builder
