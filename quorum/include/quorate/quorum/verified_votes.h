// Votes read back from a store, each resting on an envelope verified in this process: a store is a cache, not
// a root of trust (DESIGN.md). Every decision that leaves a process (verify, audit, the daemon) reads votes here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verifier.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum {

// A stored row that does not count: its envelope does not verify under the policy, or the row's columns say
// something else than its envelope (a tampered or foreign store).
struct DistrustedRow {
  int64_t id = 0;
  std::string envelope_digest;  // as the row claims it
  std::string reason;
};

// Not thread-safe (like the Store it reads). A row whose columns the Verifier vouched for in this process
// (imported or read before) counts without another check; any other row has its envelope verified (several
// threads) and is vouched for when its columns are what the envelope says. Later reads cost a hash.
class VerifiedVotes {
 public:
  struct Options {
    unsigned threads = 1;  // threads verifying envelopes not yet vouched for
  };
  // `store` and `verifier` must outlive this object.
  VerifiedVotes(Store& store, const Verifier& verifier, Options options);
  VerifiedVotes(Store& store, const Verifier& verifier) : VerifiedVotes(store, verifier, Options{}) {}

  // The votes of `subject` / of every subject, in row order; io when the store fails. Rows that do not
  // verify are left out and recorded in distrusted().
  Result<std::vector<Vote>> votes(const SubjectKey& subject);
  // The same, with the store row id of each vote in `row_ids` (same order).
  Result<std::vector<Vote>> votes(const SubjectKey& subject, std::vector<int64_t>& row_ids);
  Result<std::vector<Vote>> all_votes();
  // Only the votes of rows with an id above `after_id` (appended to `row_ids`); `last_id` is raised to the
  // highest row id read, refused rows included, so that a caller holding the older votes reads each row once.
  Result<std::vector<Vote>> votes_after(const SubjectKey& subject, int64_t after_id, std::vector<int64_t>& row_ids,
                                        int64_t& last_id);

  // votes_after() for several subjects at once: the rows of each are read, and those not vouched for yet are
  // verified together, in one pass on the threads, instead of one subject after the other. What a restarted
  // verifier needs when many questions about subjects it has not read arrive at once. One list per subject, in
  // `wanted`'s order; each subject's row ids and highest row id read go where its After points.
  struct After {
    SubjectKey subject;
    int64_t after_id = 0;
    std::vector<int64_t>* row_ids = nullptr;
    int64_t* last_id = nullptr;
  };
  Result<std::vector<std::vector<Vote>>> votes_after_each(std::span<const After> wanted);

  // Rows left out since the last take, sorted by row id, each once.
  std::vector<DistrustedRow> take_distrusted();

  Store& store() { return store_; }
  const Verifier& verifier() const { return verifier_; }

 private:
  Result<std::vector<Vote>> verified(std::vector<StoredAttestation> rows, std::vector<int64_t>* row_ids = nullptr);
  // Verifies the rows not vouched for (vouching for those whose columns are what their envelope says) and says
  // which are refused, recording those for take_distrusted().
  Result<std::vector<bool>> check_rows(std::span<const StoredAttestation> rows);

  Store& store_;
  const Verifier& verifier_;
  Options options_;
  std::vector<DistrustedRow> distrusted_;
};

}  // namespace quorate::quorum
