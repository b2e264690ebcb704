// The production Judge: the quorum module's one ingest path, one verified read path and one query path.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "quorate/core/status.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/query.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verified_votes.h"
#include "quorate/quorum/verifier.h"
#include "quorate/quorum/vote.h"
#include "quorate/quorumd/judge.h"
#include "quorate/quorumd/verifier_config.h"

namespace quorate::quorum {

// Not thread-safe (like the Store): the verifier daemon uses it from one thread, except check(), which reads
// only the Verifier. It does no verification or
// counting of its own: import_attestations (with the signer-is-publisher check), VerifiedVotes, decide and
// answer do, exactly as for `quorate verify`.
class QuorumJudge final : public Judge {
 public:
  // `clock_ms`: the wall clock; decisions are made "now" (max_age, validity windows). `threads` verify
  // signatures.
  QuorumJudge(std::unique_ptr<Store> store, std::shared_ptr<const Verifier> verifier, std::function<int64_t()> clock_ms,
              unsigned threads);

  Result<std::vector<Outcome>> ingest(const std::vector<Submission>& batch) override;
  std::unique_ptr<Checks> check(const std::vector<Submission>& batch) const override;  // check_all
  Result<std::vector<Outcome>> commit(const std::vector<Submission>& batch, std::unique_ptr<Checks> checks) override;
  Result<wire::pb::Decision> decide(const wire::pb::SubjectKey& subject) override;
  Result<std::vector<wire::pb::SubjectKey>> subjects() override;
  Result<std::vector<wire::pb::Decision>> find_by_image(const std::string& image_digest) override;
  Result<std::vector<wire::pb::Decision>> find_by_subject(const wire::pb::SubjectKey& subject) override;
  Status record(const std::vector<wire::pb::Decision>& decisions) override;
  // Reads into the vote cache the votes of the subjects the queries name that are neither there nor remembered
  // decided, verifying the rows this process has not vouched for in one pass (VerifiedVotes::votes_after_each).
  // At most kPreparedSubjects of them: an image attested for thousands of commits would otherwise hold all their
  // votes at once (the answers read such subjects one at a time, within the cache's bound).
  void prepare(const std::vector<wire::pb::Query>& queries) override;
  static constexpr size_t kPreparedSubjects = 64;
  Result<bool> is_recorded(const wire::pb::Decision& decision) override;
  Result<std::optional<LastRevision>> last_revision(const wire::pb::SubjectKey& subject) override;
  std::vector<DistrustedRow> take_distrusted() override { return votes_.take_distrusted(); }

 private:
  Result<std::vector<wire::pb::Decision>> find(const Question& q, const std::string& recipe_path);

  std::unique_ptr<Store> store_;
  std::shared_ptr<const Verifier> verifier_;
  std::function<int64_t()> clock_ms_;
  unsigned threads_;
  VerifiedVotes votes_;
  // The decisions made since the last ingest, for record(); emptied at each ingest so that it does not hold a
  // decision per subject ever decided.
  struct Made {
    Decision decision;
    std::map<std::string, int64_t> rows;  // envelope digest -> store row id, for the compact record
  };
  std::map<SubjectKey, Made> last_;
  // The verified votes (and their row ids, ascending) of subjects decided lately whose decision still misses
  // a voter, so that deciding one again reads only the rows stored since (Store::rows after an id) instead of
  // every row of the subject and checking each one again (issue 17). A subject whose decision misses nobody
  // leaves it; at most kCachedVotes votes, the least recently decided subjects forgotten first.
  struct Cached {
    std::vector<Vote> votes;
    std::vector<int64_t> ids;
    int64_t last_id = 0;  // the highest row id read for the subject, refused rows included
    uint64_t order = 0;
  };
  static constexpr size_t kCachedVotes = 32768;
  std::map<SubjectKey, Cached> cached_;
  std::map<uint64_t, SubjectKey> cached_order_;
  size_t cached_votes_ = 0;
  uint64_t cached_next_ = 0;
  void uncache(std::map<SubjectKey, Cached>::iterator it);
  // The subject's cache entry holding every vote the store holds for it (reading only the rows stored since it
  // was read last), as the most recently used; `fresh`: whether it holds votes it did not hold before.
  Result<Cached*> refresh(const SubjectKey& key, bool* fresh = nullptr);
  // After deciding `key`: a decision that misses nobody is not expected to change, so its votes leave the
  // cache; then the least recently used subjects leave it until it is within bounds.
  void settle(const SubjectKey& key, bool complete);
  // Decisions over every vote the store holds for their subject (made by decide() or a query), so that a
  // query about a subject with no vote stored since is answered without reading its votes or deciding again,
  // and decide() after such a query does not decide again (issue 17). An ingest that stores a vote forgets its
  // subject; an entry also ends at decided_until(). At most kRemembered entries, the oldest forgotten first.
  // A query about a subject it does not know takes the subject's votes from the vote cache (cached_), filled
  // as decide() fills it.
  class Memory final : public DecisionMemory {
   public:
    static constexpr size_t kRemembered = 256;
    explicit Memory(QuorumJudge& owner) : owner_(owner) {}
    const Decision* known(const SubjectKey& subject, int64_t now) override;
    void made(const Decision& decision, std::span<const Vote> votes, int64_t now) override;
    Result<const std::vector<Vote>*> votes(const SubjectKey& subject) override;
    void remember(const Decision& decision, const wire::pb::Decision& wire, int64_t until);
    const wire::pb::Decision* wire(const SubjectKey& subject) const;
    void forget(const SubjectKey& subject) { entries_.erase(subject); }
    void set_policy(const Policy* policy) { policy_ = policy; }

   private:
    struct Entry {
      Decision decision;
      wire::pb::Decision wire;
      int64_t until = 0;
      uint64_t order = 0;
    };
    QuorumJudge& owner_;
    const Policy* policy_ = nullptr;
    std::map<SubjectKey, Entry> entries_;
    std::map<uint64_t, SubjectKey> by_order_;
    uint64_t next_ = 0;
  };
  Memory memory_;
};

// The production Judge for `quorate quorum`: loads config.policy (with the roster's public keys) and opens
// config.data_dir/store.db.
Result<std::unique_ptr<Judge>> open_quorum_judge(const VerifierConfig& config, std::function<int64_t()> clock_ms);

// The wire form of an engine decision, and the engine form of a wire subject key.
wire::pb::Decision to_wire(const Decision& d);
SubjectKey from_wire(const wire::pb::SubjectKey& s);
// The engine form of a wire decision, as far as the wire carries it (what summarising an answer and naming
// why an image is refused need): subject, verdict, digests, agreeing and dissenting nodes, void nodes (reason
// "void"), missing nodes, reason, policy digest.
Decision from_wire(const wire::pb::Decision& d);

}  // namespace quorate::quorum
