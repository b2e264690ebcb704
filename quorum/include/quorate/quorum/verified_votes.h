// Votes read back from a store, each resting on an envelope verified in this process: a store is a cache, not
// a root of trust (DESIGN.md). Every decision that leaves a process (verify, audit, the daemon) reads votes here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_set>
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

// Not thread-safe (like the Store it reads). The first read of a row verifies its envelope (several threads)
// and remembers a fingerprint of the columns it vouched for; later reads of unchanged rows cost a hash.
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

  // Outcomes of import_attestations in this process: their votes are vouched for without another check.
  void vouch(std::span<const ImportOutcome> outcomes);

  // Rows left out since the last take, sorted by row id, each once.
  std::vector<DistrustedRow> take_distrusted();

  Store& store() { return store_; }
  const Verifier& verifier() const { return verifier_; }

 private:
  Result<std::vector<Vote>> verified(std::vector<StoredAttestation> rows, std::vector<int64_t>* row_ids = nullptr);

  Store& store_;
  const Verifier& verifier_;
  Options options_;
  std::unordered_set<std::string> vouched_;  // fingerprints (SHA-256 hex) of vouched-for columns
  std::vector<DistrustedRow> distrusted_;
};

}  // namespace quorate::quorum
