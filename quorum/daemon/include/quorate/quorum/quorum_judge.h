// The production Judge: the quorum store and engine under a policy, with envelope verification plugged in.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "quorate/core/status.h"
#include "quorate/quorum/judge.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verifier_config.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum {

// What the signature check yields for one envelope: the vote it casts and the statement's start time.
struct VerifiedEnvelope {
  Vote vote;               // vote.node_id is the signer's node id; vote.envelope_digest identifies it
  int64_t started_on = 0;
  std::string canonical_envelope;  // the envelope as it is to be stored; empty: the bytes as received
};
// Checks a DSSE envelope's signature against the roster and extracts its vote. A forged, unknown-key or
// malformed envelope is an error Status (kVerification / kBadInput); its message becomes the rejection reason.
// Called from several threads at once: it must be thread-safe.
using EnvelopeVerifier = std::function<Result<VerifiedEnvelope>(const std::string& envelope)>;

// A short, countable name for why an envelope was refused ("unknown key", "bad signature", ...).
std::string rejection_category(const Status& status);

// Not thread-safe (like the Store): the verifier daemon uses it from one thread.
class QuorumJudge final : public Judge {
 public:
  // `clock_ms`: the wall clock; decisions are made "now" (max_age, validity windows).
  QuorumJudge(std::unique_ptr<Store> store, Policy policy, EnvelopeVerifier verifier, std::function<int64_t()> clock_ms);

  Result<std::vector<Outcome>> ingest(const std::vector<Submission>& batch) override;
  Result<wire::pb::Decision> decide(const wire::pb::SubjectKey& subject) override;
  Result<std::vector<wire::pb::SubjectKey>> subjects() override;
  Result<std::vector<wire::pb::Decision>> find_by_image(const std::string& image_digest) override;
  Result<std::vector<wire::pb::Decision>> find_by_subject(const wire::pb::SubjectKey& subject) override;
  Status record(const std::vector<wire::pb::Decision>& decisions) override;

 private:
  Result<Decision> decide_key(const SubjectKey& key);
  Result<Outcome> one(const Submission& s, Result<VerifiedEnvelope>& verified, int64_t now);

  std::unique_ptr<Store> store_;
  Policy policy_;
  EnvelopeVerifier verifier_;
  std::function<int64_t()> clock_ms_;
  std::map<SubjectKey, Decision> last_;  // the last decision made per subject key, for record()
};

// The production Judge for `quorate quorum`: loads config.policy (with the roster's public keys), opens
// config.data_dir/store.db, and verifies envelopes through the quorum module's Verifier.
Result<std::unique_ptr<Judge>> open_quorum_judge(const VerifierConfig& config, std::function<int64_t()> clock_ms);

// The wire form of an engine decision.
wire::pb::Decision to_wire(const Decision& d);

}  // namespace quorate::quorum
