// open_quorum_judge: the policy file (with its roster, verified through the attest module) and the store.
#include <memory>

#include "quorate/quorum/quorum_judge.h"
#include "quorate/quorum/verifier.h"

namespace quorate::quorum {

Result<std::unique_ptr<Judge>> open_quorum_judge(const VerifierConfig& config, std::function<int64_t()> clock_ms) {
  auto verifier = std::make_shared<Verifier>(QR_TRY(Verifier::load(config.policy)));
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return Status::io(config.data_dir.string() + ": " + ec.message());
  auto store = QR_TRY(Store::open(config.data_dir / "store.db"));
  EnvelopeVerifier check = [verifier](const std::string& envelope) -> Result<VerifiedEnvelope> {
    auto v = QR_TRY(verifier->verify(envelope));
    VerifiedEnvelope out;
    out.vote = std::move(v.vote);
    out.started_on = v.started_on;
    out.canonical_envelope = std::move(v.envelope);
    return out;
  };
  return std::unique_ptr<Judge>(
      new QuorumJudge(std::move(store), verifier->policy(), std::move(check), std::move(clock_ms)));
}

}  // namespace quorate::quorum
