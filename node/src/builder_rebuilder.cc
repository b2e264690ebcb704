// The production Rebuilder, binding the builder (rebuild a commit) and attest (sign its build result) modules.
#include "quorate/node/builder_rebuilder.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/pkcs11.h"
#include "quorate/builder/build.h"
#include "quorate/core/sha256.h"

namespace quorate::node {
namespace {

// Failed builds' logs kept in <data_dir>/logs: the newest this many (a node that fails every build for a day
// must not fill its disk with logs).
constexpr size_t kKeptFailedLogs = 32;

// Removes the oldest build-*.log files of `dir` beyond kKeptFailedLogs (by modification time, then name).
void prune_failed_logs(const std::filesystem::path& dir) {
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> logs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("build-", 0) != 0 || e.path().extension() != ".log") continue;
    auto t = std::filesystem::last_write_time(e.path(), ec);
    if (!ec) logs.emplace_back(t, e.path());
  }
  if (logs.size() <= kKeptFailedLogs) return;
  std::sort(logs.begin(), logs.end());
  for (size_t i = 0; i + kKeptFailedLogs < logs.size(); ++i) std::filesystem::remove(logs[i].second, ec);
}

builder::Sandbox sandbox_of(const std::string& name) {
  if (name == "bubblewrap") return builder::Sandbox::kBubblewrap;
  if (name == "none") return builder::Sandbox::kNone;
  return builder::Sandbox::kAuto;
}

class BuilderRebuilder : public Rebuilder {
 public:
  BuilderRebuilder(NodeConfig config, std::unique_ptr<attest::Signer> signer, std::function<int64_t()> clock_ms)
      : config_(std::move(config)), signer_(std::move(signer)), clock_ms_(std::move(clock_ms)) {}

  Result<RebuildOutput> rebuild(const wire::RebuildRequest& r, const std::atomic<bool>& cancel) override {
    // One fresh directory per job. The node's product is the attestation; the image is kept only when the
    // operator asks for it (build.keep_images), as an OCI layout named by its manifest digest.
    auto job = config_.work_dir / "jobs" / (sha256_hex(r.request_id).substr(0, 16) + "-" + std::to_string(++jobs_));
    std::error_code ec;
    std::filesystem::remove_all(job, ec);
    std::filesystem::create_directories(job / "work", ec);
    if (ec) return Status::io(job.string() + ": " + ec.message());
    struct Cleanup {
      std::filesystem::path dir;
      ~Cleanup() {
        std::error_code e;
        std::filesystem::remove_all(dir, e);
      }
    } cleanup{job};

    builder::BuildOptions o;
    o.repo = r.repo;
    o.commit = r.commit;
    o.recipe_path = r.recipe_path;
    o.image_name = r.image_name;
    o.image_tag = r.image_tag;
    o.build_args = r.build_args;
    o.source_date_epoch = r.source_date_epoch;
    o.output = job / "image";
    o.work_dir = job / "work";
    // The job directory goes when the job ends; a failed build's log, which the error names, must not.
    o.failed_log_dir = config_.data_dir / "logs";
    o.sandbox = sandbox_of(config_.sandbox);
    o.bwrap = config_.bwrap;
    o.timeout = std::chrono::seconds(config_.build_timeout_seconds);
    o.max_output_bytes = config_.max_output_bytes;
    o.image_store = config_.image_store;
    if (!config_.build_path.empty()) {
      std::string path;
      for (const auto& p : config_.build_path) path += (path.empty() ? "" : ":") + p;
      o.default_path = path;
    }
    o.clock_ms = clock_ms_;
    o.cancel = &cancel;
    auto result = builder::build(o);
    if (!result.ok()) {
      prune_failed_logs(o.failed_log_dir);
      return result.status();
    }
    auto json = builder::build_result_json(*result);
    if (!json.ok()) return json.status();
    auto envelope = attest::attest_build_result(*json, *signer_, config_.node_id, attest::AttestFormat::kEnvelope,
                                                config_.builder_id);
    if (!envelope.ok()) return envelope.status().with_context("sign");
    if (!config_.keep_images.empty()) QR_RETURN_IF_ERROR(keep(o.output, result->manifest_digest));
    return RebuildOutput{std::move(*envelope), result->manifest_digest, builder::tool_warnings(*result)};
  }

 private:
  // Moves the finished layout to keep_images/<hex>. The name is the content's digest, so an image already
  // there is the same image: the new copy is dropped.
  Status keep(const std::filesystem::path& image, const std::string& digest) const {
    auto colon = digest.find(':');
    auto target = config_.keep_images / digest.substr(colon == std::string::npos ? 0 : colon + 1);
    std::error_code ec;
    std::filesystem::create_directories(config_.keep_images, ec);
    if (ec) return Status::io("build.keep_images " + config_.keep_images.string() + ": " + ec.message());
    if (std::filesystem::exists(target, ec)) return Status::ok_status();
    std::filesystem::rename(image, target, ec);
    if (ec) return Status::io("build.keep_images: cannot move the image to " + target.string() + ": " + ec.message());
    return Status::ok_status();
  }

  NodeConfig config_;
  std::unique_ptr<attest::Signer> signer_;
  std::function<int64_t()> clock_ms_;
  uint64_t jobs_ = 0;
};

}  // namespace

Result<std::unique_ptr<Rebuilder>> make_builder_rebuilder(const NodeConfig& config, std::function<int64_t()> clock_ms,
                                                          std::function<std::string(const std::string&)> getenv) {
  std::string passphrase;
  if (!config.key_passphrase_env.empty()) passphrase = getenv(config.key_passphrase_env);
  auto signer = attest::open_signer(config.signing_key.string(), passphrase);
  if (!signer.ok()) return signer.status().with_context("signing_key");
  // Leftovers of builds interrupted by a crash are never resumed: start clean.
  std::error_code ec;
  std::filesystem::remove_all(config.work_dir / "jobs", ec);
  std::filesystem::create_directories(config.work_dir / "jobs", ec);
  if (ec) return Status::io((config.work_dir / "jobs").string() + ": " + ec.message());
  return std::unique_ptr<Rebuilder>(new BuilderRebuilder(config, std::move(*signer), std::move(clock_ms)));
}

}  // namespace quorate::node
