// QuorumJudge: the daemon's Judge as a thin adapter over the quorum module's paths (import, verified votes,
// decide, answer) and the wire types.
#include "quorate/quorumd/quorum_judge.h"

#include <algorithm>
#include <map>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <nlohmann/json.hpp>

#include "quorate/core/build_args.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "quorate/quorum/query.h"

namespace quorate::quorum {
namespace {

namespace pb = wire::pb;

pb::SubjectKey to_wire_key(const SubjectKey& s) {
  pb::SubjectKey out;
  out.set_repo(s.source_uri);
  out.set_commit(s.commit);
  out.set_recipe_path(s.recipe_path);
  out.set_source_date_epoch(s.source_date_epoch);
  out.set_build_args(s.build_args);
  return out;
}

// What the daemon records for a decision it publishes: the decision with every ballot and void vote naming
// the store row of its attestation instead of copying its fields (node, key, digests, time are in that row,
// and its envelope proves them). About 1 KB at 50 nodes instead of about 24 KB (issue 17).
Result<std::string> compact_record(const Decision& d, const std::map<std::string, int64_t>& rows) {
  auto ref = [&](const std::string& envelope_digest) -> nlohmann::json {
    auto it = rows.find(envelope_digest);
    if (it != rows.end()) return it->second;
    return envelope_digest;  // not from this store's rows (cannot happen for the daemon): the digest itself
  };
  nlohmann::json j;
  j["record"] = "compact/1";
  j["subject"] = {{"source_uri", d.subject.source_uri},
                  {"commit", d.subject.commit},
                  {"recipe_path", d.subject.recipe_path},
                  {"source_date_epoch", d.subject.source_date_epoch}};
  // as Decision::to_json: an object, absent when there are none
  if (!d.subject.build_args.empty()) j["subject"]["build_args"] = build_args_json(d.subject.build_args);
  j["accepted"] = d.accepted;
  j["digest"] = d.digest;
  j["image_digests"] = d.image_digests;
  j["agreeing"] = nlohmann::json::array();
  for (const auto& b : d.agreeing) j["agreeing"].push_back(ref(b.envelope_digest));
  j["dissenting"] = nlohmann::json::array();
  for (const auto& b : d.dissenting) j["dissenting"].push_back(ref(b.envelope_digest));
  j["void_votes"] = nlohmann::json::array();
  for (const auto& v : d.void_votes) j["void_votes"].push_back({ref(v.envelope_digest), v.reason});
  j["missing"] = d.missing;
  j["equivocators"] = d.equivocators;
  j["reason"] = d.reason;
  j["policy_digest"] = d.policy_digest;
  j["time"] = format_rfc3339(d.time);
  return canonical_json(j, "decision record");
}

// A batch as import_attestations takes it: each envelope with the node that published it (it must be the
// signer). The views point into `batch`.
std::vector<Incoming> judge_incoming(const std::vector<Judge::Submission>& batch) {
  std::vector<Incoming> incoming;
  incoming.reserve(batch.size());
  for (const auto& s : batch) incoming.push_back({s.envelope, s.node_id});
  return incoming;
}

// QuorumJudge::check()'s result: check_all's, in the batch's order.
struct QuorumChecks final : Judge::Checks {
  std::vector<Checked> checked;
};

}  // namespace

std::string decision_fingerprint(const pb::Decision& decision) {
  pb::Decision d = decision;
  d.clear_revision();
  d.clear_decision_json();
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    d.SerializeToCodedStream(&coded);
    coded.Trim();
  }
  return sha256_hex(out);
}

SubjectKey from_wire(const pb::SubjectKey& s) {
  return {s.repo(), s.commit(), s.recipe_path(), s.source_date_epoch(), s.build_args()};
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
  if (auto json = d.to_json(); json.ok()) out.set_decision_json(*json);  // cannot fail: see Decision::to_json
  for (const auto& i : d.image_digests) out.add_image_digests(i);
  return out;
}

Decision from_wire(const pb::Decision& d) {
  Decision out;
  out.subject = from_wire(d.subject());
  out.accepted = d.accepted();
  out.digest = d.digest();
  out.image_digests.assign(d.image_digests().begin(), d.image_digests().end());
  for (const auto& n : d.agreeing()) out.agreeing.push_back({.node = n, .digest = d.digest()});
  for (const auto& x : d.dissenters()) out.dissenting.push_back({.node = x.node_id(), .digest = x.digest()});
  for (const auto& n : d.void_nodes()) out.void_votes.push_back({.node_id = n, .reason = "void"});
  out.missing.assign(d.missing().begin(), d.missing().end());
  out.reason = d.reason();
  out.policy_digest = d.policy_digest();
  return out;
}

QuorumJudge::QuorumJudge(std::unique_ptr<Store> store, std::shared_ptr<const Verifier> verifier,
                         std::function<int64_t()> clock_ms, unsigned threads)
    : store_(std::move(store)),
      verifier_(std::move(verifier)),
      clock_ms_(std::move(clock_ms)),
      threads_(std::max(1u, threads)),
      votes_(*store_, *verifier_, {threads_}),
      memory_(*this) {
  memory_.set_policy(&verifier_->policy());
}

const Decision* QuorumJudge::Memory::known(const SubjectKey& subject, int64_t now) {
  auto it = entries_.find(subject);
  if (it == entries_.end()) return nullptr;
  if (now >= it->second.until || now < it->second.decision.time) {  // may say something else now: decide again
    by_order_.erase(it->second.order);
    entries_.erase(it);
    return nullptr;
  }
  return &it->second.decision;
}

void QuorumJudge::Memory::made(const Decision& decision, std::span<const Vote> votes, int64_t now) {
  remember(decision, to_wire(decision), decided_until(*policy_, votes, now));
  owner_.settle(decision.subject, decision.missing.empty());  // last: `votes` may be the cache's
}

Result<const std::vector<Vote>*> QuorumJudge::Memory::votes(const SubjectKey& subject) {
  Cached* c = QR_TRY(owner_.refresh(subject));
  return &c->votes;
}

void QuorumJudge::Memory::remember(const Decision& decision, const wire::pb::Decision& wire, int64_t until) {
  auto it = entries_.find(decision.subject);
  if (it != entries_.end()) {
    by_order_.erase(it->second.order);
    entries_.erase(it);
  }
  while (entries_.size() >= kRemembered && !by_order_.empty()) {
    entries_.erase(by_order_.begin()->second);
    by_order_.erase(by_order_.begin());
  }
  const uint64_t order = next_++;
  entries_.emplace(decision.subject, Entry{decision, wire, until, order});
  by_order_.emplace(order, decision.subject);
}

const wire::pb::Decision* QuorumJudge::Memory::wire(const SubjectKey& subject) const {
  auto it = entries_.find(subject);
  return it == entries_.end() ? nullptr : &it->second.wire;
}

Result<std::vector<Judge::Outcome>> QuorumJudge::ingest(const std::vector<Submission>& batch) {
  return commit(batch, check(batch));
}

std::unique_ptr<Judge::Checks> QuorumJudge::check(const std::vector<Submission>& batch) const {
  auto out = std::make_unique<QuorumChecks>();
  out->checked = check_all(*verifier_, judge_incoming(batch), threads_);
  return out;
}

Result<std::vector<Judge::Outcome>> QuorumJudge::commit(const std::vector<Submission>& batch,
                                                        std::unique_ptr<Checks> checks) {
  const auto* checked = dynamic_cast<const QuorumChecks*>(checks.get());
  if (checked == nullptr) return Status::internal("commit: a batch without the checks of this judge's check()");
  last_.clear();
  auto outcomes =
      QR_TRY(store_checked(*store_, *verifier_, judge_incoming(batch), checked->checked, clock_ms_() / 1000));
  for (const auto& o : outcomes) {
    if (o.kind != ImportOutcome::Kind::kStored || !o.subject) continue;
    memory_.forget(*o.subject);
  }
  std::vector<Outcome> out;
  out.reserve(outcomes.size());
  for (const auto& o : outcomes) {
    Outcome x;
    switch (o.kind) {
      case ImportOutcome::Kind::kStored:
        x.kind = Outcome::Kind::kStored;
        break;
      case ImportOutcome::Kind::kDuplicate:
        x.kind = Outcome::Kind::kDuplicate;
        break;
      case ImportOutcome::Kind::kRejected:
        x.kind = Outcome::Kind::kRejected;
        break;
    }
    if (o.kind == ImportOutcome::Kind::kRejected) x.reason = attest::failure_name(o.failure);
    if (o.subject) x.subject = to_wire_key(*o.subject);
    out.push_back(std::move(x));
  }
  return out;
}

void QuorumJudge::uncache(std::map<SubjectKey, Cached>::iterator it) {
  cached_votes_ -= it->second.votes.size();
  cached_order_.erase(it->second.order);
  cached_.erase(it);
}

Result<QuorumJudge::Cached*> QuorumJudge::refresh(const SubjectKey& key, bool* fresh) {
  auto [it, created] = cached_.try_emplace(key);
  Cached& c = it->second;
  if (!created) cached_order_.erase(c.order);
  c.order = cached_next_++;
  cached_order_.emplace(c.order, key);
  // Only the rows stored since the subject was read last (all of them the first time): row ids only grow.
  auto added = votes_.votes_after(key, c.last_id, c.ids, c.last_id);
  if (!added.ok()) {
    uncache(it);
    return added.status();
  }
  cached_votes_ += added->size();
  for (auto& v : *added) c.votes.push_back(std::move(v));
  if (fresh) *fresh = created || !added->empty();
  return &c;
}

void QuorumJudge::settle(const SubjectKey& key, bool complete) {
  if (complete) {
    if (auto it = cached_.find(key); it != cached_.end()) uncache(it);
  }
  while (cached_votes_ > kCachedVotes && !cached_order_.empty()) uncache(cached_.find(cached_order_.begin()->second));
}

Result<pb::Decision> QuorumJudge::decide(const pb::SubjectKey& subject) {
  SubjectKey key = from_wire(subject);
  bool fresh = true;
  const Cached* c = QR_TRY(refresh(key, &fresh));
  const std::vector<Vote>& votes = c->votes;
  Made made;
  pb::Decision out;
  const int64_t now = clock_ms_() / 1000;
  const Decision* known = fresh ? nullptr : memory_.known(key, now);
  if (known != nullptr) {
    // Made over these very votes (the memory's decisions are made from the cache, and anything the cache
    // reads is decided again) and still what deciding now gives (decided_until): typically a query decided it a
    // moment ago, and the daemon records what that query found instead of deciding it twice.
    made.decision = *known;
    out = *memory_.wire(key);
  } else {
    made.decision = quorum::decide(verifier_->policy(), key, votes, now);
    out = to_wire(made.decision);
    memory_.remember(made.decision, out, decided_until(verifier_->policy(), votes, now));
  }
  for (size_t i = 0; i < votes.size() && i < c->ids.size(); ++i) made.rows[votes[i].envelope_digest] = c->ids[i];
  const bool complete = made.decision.missing.empty();
  last_[key] = std::move(made);
  settle(key, complete);
  return out;
}

Result<std::vector<pb::SubjectKey>> QuorumJudge::subjects() {
  std::vector<pb::SubjectKey> out;
  for (const auto& k : QR_TRY(store_->subjects())) out.push_back(to_wire_key(k));
  return out;
}

Result<std::vector<pb::Decision>> QuorumJudge::find(const Question& q, const std::string& recipe_path) {
  Answer a = QR_TRY(answer(verifier_->policy(), votes_, q, clock_ms_() / 1000, &memory_));
  std::vector<pb::Decision> out;
  for (const auto& d : a.decisions) {
    if (!recipe_path.empty() && d.subject.recipe_path != recipe_path) continue;
    // answer() took each decision from memory_ or told memory_ about it: its wire form is there (unless it was
    // forgotten for room in this very answer).
    const pb::Decision* remembered = memory_.wire(d.subject);
    out.push_back(remembered ? *remembered : to_wire(d));
  }
  return out;
}

Result<std::vector<pb::Decision>> QuorumJudge::find_by_image(const std::string& image_digest) {
  return find({image_digest, {}, {}}, {});
}

Result<std::vector<pb::Decision>> QuorumJudge::find_by_subject(const pb::SubjectKey& subject) {
  if (subject.commit().empty()) return Status::bad_input("query names a subject without a commit");
  return find({{}, subject.commit(), subject.repo()}, subject.recipe_path());
}

void QuorumJudge::prepare(const std::vector<pb::Query>& queries) {
  const int64_t now = clock_ms_() / 1000;
  std::set<SubjectKey> keys;
  for (const auto& q : queries) {
    Result<std::vector<SubjectKey>> named = std::vector<SubjectKey>();
    if (q.what_case() == pb::Query::kImageDigest) {
      named = store_->subjects_with_image(q.image_digest());
    } else if (q.what_case() == pb::Query::kSubject && !q.subject().commit().empty()) {
      named = store_->subjects_with_commit(q.subject().commit(), q.subject().repo());
    }
    if (!named.ok()) continue;  // the answer reports it
    for (auto& k : *named) {
      // Answered from memory, or from the vote cache (reading only the rows stored since): nothing to do ahead.
      if (cached_.count(k) || memory_.known(k, now) != nullptr) continue;
      if (keys.size() == kPreparedSubjects) break;  // the rest are read by their answers
      keys.insert(std::move(k));
    }
  }
  if (keys.size() < 2) return;  // one subject: its answer reads it the same way
  // Into the vote cache, as refresh() would put them one subject at a time: the answers take them from there.
  std::vector<VerifiedVotes::After> wanted;
  for (const auto& k : keys) {
    Cached& c = cached_[k];
    c.order = cached_next_++;
    cached_order_.emplace(c.order, k);
    wanted.push_back({k, 0, &c.ids, &c.last_id});
  }
  auto got = votes_.votes_after_each(wanted);
  for (size_t i = 0; i < wanted.size(); ++i) {
    auto it = cached_.find(wanted[i].subject);
    if (!got.ok()) {
      uncache(it);  // the answers read the store again and report the error
      continue;
    }
    cached_votes_ += (*got)[i].size();
    it->second.votes = std::move((*got)[i]);
  }
  while (cached_votes_ > kCachedVotes && !cached_order_.empty()) uncache(cached_.find(cached_order_.begin()->second));
}

Result<bool> QuorumJudge::is_recorded(const pb::Decision& d) {
  // The fingerprint, not the record: the record names rows and carries the time it was made.
  auto last = QR_TRY(store_->last_revision(from_wire(d.subject())));
  return last.has_value() && last->fingerprint == decision_fingerprint(d);
}

Result<std::optional<Judge::LastRevision>> QuorumJudge::last_revision(const pb::SubjectKey& subject) {
  auto last = QR_TRY(store_->last_revision(from_wire(subject)));
  if (!last) return std::optional<LastRevision>();
  return std::optional<LastRevision>(LastRevision{static_cast<uint64_t>(last->revision), last->fingerprint});
}

Status QuorumJudge::record(const std::vector<pb::Decision>& decisions) {
  // What decide() made and the daemon does not record (unchanged) is dropped here, not at the next ingest only:
  // a verifier answering queries with no attestation arriving kept one decision and its row map per subject
  // asked (about 17 KB at 50 nodes: 170 MB for 10,000 subjects; issue 17).
  struct Forget {
    std::map<SubjectKey, Made>& made;
    ~Forget() { made.clear(); }
  } forget{last_};
  if (decisions.empty()) return Status();
  return store_->transaction([&]() -> Status {
    for (const auto& d : decisions) {
      const SubjectKey key = from_wire(d.subject());
      auto it = last_.find(key);
      if (it == last_.end()) return Status::internal("record: no decision made for " + key.to_string());
      const std::string record = QR_TRY(compact_record(it->second.decision, it->second.rows));
      QR_TRY(store_->add_decision(it->second.decision, static_cast<int64_t>(d.revision()), decision_fingerprint(d),
                                  record));
    }
    return Status();
  });
}

}  // namespace quorate::quorum
