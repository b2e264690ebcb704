// QuorumJudge: verify -> store (one transaction per batch) -> decide, over the quorum module.
#include "quorate/quorum/quorum_judge.h"

#include <map>
#include <set>
#include <thread>

#include "quorate/core/sha256.h"

namespace quorate::quorum {
namespace {

namespace pb = wire::pb;

SubjectKey from_wire(const pb::SubjectKey& s) { return {s.repo(), s.commit(), s.recipe_path()}; }

pb::SubjectKey to_wire_key(const SubjectKey& s) {
  pb::SubjectKey out;
  out.set_repo(s.source_uri);
  out.set_commit(s.commit);
  out.set_recipe_path(s.recipe_path);
  return out;
}

}  // namespace

std::string rejection_category(const Status& status) {
  static const char* kKnown[] = {"unknown key", "bad signature", "revoked", "expired", "not yet valid",
                                 "wrong payload type", "signer is not the publishing node"};
  for (const char* k : kKnown) {
    if (status.message().find(k) != std::string::npos) return k;
  }
  return code_name(status.code());
}

pb::Decision to_wire(const Decision& d) {
  pb::Decision out;
  *out.mutable_subject() = to_wire_key(d.subject);
  out.set_accepted(d.accepted);
  out.set_digest(d.digest);
  for (const auto& b : d.agreeing) out.add_agreeing(b.node);
  for (const auto& b : d.dissenting) {
    auto* x = out.add_dissenters();
    x->set_node_id(b.node);
    x->set_digest(b.digest);
  }
  std::set<std::string> void_nodes;
  for (const auto& v : d.void_votes) void_nodes.insert(v.node_id);
  for (const auto& n : void_nodes) out.add_void_nodes(n);
  for (const auto& m : d.missing) out.add_missing(m);
  out.set_reason(d.reason);
  out.set_policy_digest(d.policy_digest);
  out.set_decision_json(d.to_json());
  for (const auto& i : d.image_digests) out.add_image_digests(i);
  return out;
}

QuorumJudge::QuorumJudge(std::unique_ptr<Store> store, Policy policy, EnvelopeVerifier verifier,
                         std::function<int64_t()> clock_ms)
    : store_(std::move(store)), policy_(std::move(policy)), verifier_(std::move(verifier)), clock_ms_(std::move(clock_ms)) {}

Result<Judge::Outcome> QuorumJudge::one(const Submission& s, Result<VerifiedEnvelope>& verified, int64_t now) {
  Outcome o;
  Status refused;
  if (!verified.ok()) {
    refused = verified.status();
  } else if (verified->vote.node_id != s.node_id) {
    refused = Status::verification("signer is not the publishing node: signed by '" + verified->vote.node_id +
                                   "', published by '" + s.node_id + "'");
  }
  if (!refused.ok()) {
    o.kind = Outcome::Kind::kRejected;
    o.reason = rejection_category(refused);
    Rejection r;
    r.envelope_digest = sha256_digest(s.envelope);
    r.envelope = s.envelope;
    r.code = code_name(refused.code());
    r.reason = refused.message();
    r.received_at = now;
    QR_TRY(store_->add_rejection(r));
    return o;
  }
  StoredAttestation a;
  a.envelope_digest = verified->vote.envelope_digest;
  a.envelope = verified->canonical_envelope.empty() ? s.envelope : verified->canonical_envelope;
  a.vote = verified->vote;
  a.started_on = verified->started_on;
  a.received_at = now;
  o.subject = to_wire_key(a.vote.subject);
  bool added = QR_TRY(store_->add_attestation(a));
  o.kind = added ? Outcome::Kind::kStored : Outcome::Kind::kDuplicate;
  return o;
}

Result<std::vector<Judge::Outcome>> QuorumJudge::ingest(const std::vector<Submission>& batch) {
  // Signature checks are the expensive, independent part: spread them over the cores, then store in order.
  std::vector<Result<VerifiedEnvelope>> verified(batch.size(), Result<VerifiedEnvelope>(Status::internal("unchecked")));
  size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
  threads = std::min(threads, std::max<size_t>(1, batch.size() / 16));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = t; i < batch.size(); i += threads) verified[i] = verifier_(batch[i].envelope);
    });
  }
  for (size_t i = 0; i < batch.size(); i += threads) verified[i] = verifier_(batch[i].envelope);
  for (auto& th : pool) th.join();

  std::vector<Outcome> out;
  int64_t now = clock_ms_() / 1000;
  Status s = store_->transaction([&]() -> Status {
    out.clear();
    for (size_t i = 0; i < batch.size(); ++i) out.push_back(QR_TRY(one(batch[i], verified[i], now)));
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Result<Decision> QuorumJudge::decide_key(const SubjectKey& key) {
  auto votes = QR_TRY(store_->votes(key));
  Decision d = quorum::decide(policy_, key, votes, clock_ms_() / 1000);
  last_[key] = d;
  return d;
}

Result<pb::Decision> QuorumJudge::decide(const pb::SubjectKey& subject) {
  return to_wire(QR_TRY(decide_key(from_wire(subject))));
}

Result<std::vector<pb::SubjectKey>> QuorumJudge::subjects() {
  std::vector<pb::SubjectKey> out;
  for (const auto& k : QR_TRY(store_->subjects())) out.push_back(to_wire_key(k));
  return out;
}

Result<std::vector<pb::Decision>> QuorumJudge::find_by_image(const std::string& image_digest) {
  std::vector<pb::Decision> out;
  for (const auto& k : QR_TRY(store_->subjects_with_image(image_digest))) out.push_back(to_wire(QR_TRY(decide_key(k))));
  return out;
}

Result<std::vector<pb::Decision>> QuorumJudge::find_by_subject(const pb::SubjectKey& subject) {
  std::vector<pb::Decision> out;
  for (const auto& k : QR_TRY(store_->subjects_with_commit(subject.commit(), subject.repo()))) {
    if (!subject.recipe_path().empty() && k.recipe_path != subject.recipe_path()) continue;
    out.push_back(to_wire(QR_TRY(decide_key(k))));
  }
  return out;
}

Status QuorumJudge::record(const std::vector<pb::Decision>& decisions) {
  return store_->transaction([&]() -> Status {
    for (const auto& d : decisions) {
      auto it = last_.find(from_wire(d.subject()));
      if (it != last_.end()) QR_TRY(store_->add_decision(it->second));
    }
    return Status();
  });
}

}  // namespace quorate::quorum
