// open_quorum_judge: the policy file (with its roster, verified through the attest module) and the store.
#include <algorithm>
#include <memory>
#include <thread>

#include "quorate/quorum/verifier.h"
#include "quorate/quorumd/quorum_judge.h"

namespace quorate::quorum {

Result<std::unique_ptr<Judge>> open_quorum_judge(const VerifierConfig& config, std::function<int64_t()> clock_ms) {
  auto verifier = std::make_shared<const Verifier>(QR_TRY(Verifier::load(config.policy)));
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Status::io(config.data_dir.string() + ": " + ec.message());
  auto store = QR_TRY(Store::open(config.data_dir / "store.db"));
  unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  return std::unique_ptr<Judge>(new QuorumJudge(std::move(store), std::move(verifier), std::move(clock_ms), threads));
}

}  // namespace quorate::quorum
