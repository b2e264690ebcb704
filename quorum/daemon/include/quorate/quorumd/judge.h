// What the verifier daemon asks of the quorum module: verify and store one attestation, decide a subject
// key, answer queries. An interface so the daemon's network behaviour is tested on its own.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/quorum/verified_votes.h"
#include "quorate/wire/frame.h"

namespace quorate::quorum {

// What makes two decisions "the same" for publishing: SHA-256 (hex) of everything but the revision and the JSON
// record (which carries the time it was made), serialized deterministically.
std::string decision_fingerprint(const wire::pb::Decision& d);

// Not thread-safe: the daemon calls it from its one thread, except check() (see there).
class Judge {
 public:
  struct Outcome {
    enum class Kind { kStored, kDuplicate, kRejected };
    Kind kind = Kind::kRejected;
    std::string reason;                           // kRejected: "unknown key", "bad signature", ...
    std::optional<wire::pb::SubjectKey> subject;  // the subject key the attestation votes on, when known
  };
  virtual ~Judge() = default;

  struct Submission {
    std::string node_id;   // the node that published it (it must be the signer)
    std::string envelope;  // DSSE envelope JSON
  };

  // Verifies each envelope as published by its node (it must be signed by that node's roster key) and stores
  // the batch, durably and atomically (one transaction: one fsync for many), before returning one Outcome per
  // submission, in order. A verification failure is an Outcome (kRejected), not an error; errors are for
  // failures of the store itself, and then nothing of the batch counts as stored.
  virtual Result<std::vector<Outcome>> ingest(const std::vector<Submission>& batch) = 0;
  // ingest() in two steps, so that the daemon verifies its next batch while it stores and decides the current
  // one (docs/wire.md, "The verifier's loop"): check() verifies `batch` and may be called from another thread,
  // concurrently with any other call (it reads the roster, never the store); commit() then stores that batch
  // with what check() returned for it, on the daemon's thread, with ingest()'s outcomes and errors.
  // ingest(batch) is commit(batch, check(batch)). Default: check() does nothing and commit() is ingest().
  class Checks {
   public:
    virtual ~Checks() = default;
  };
  virtual std::unique_ptr<Checks> check(const std::vector<Submission>& batch) const {
    (void)batch;
    return nullptr;
  }
  virtual Result<std::vector<Outcome>> commit(const std::vector<Submission>& batch, std::unique_ptr<Checks> checks) {
    (void)checks;
    return ingest(batch);
  }
  // Called with the decisions that changed among those decide() made since the last call (possibly none),
  // before any of them is published: they are to be recorded durably (in one transaction) before returning,
  // each with its revision and decision_fingerprint(), so that last_revision() gives them back after a restart;
  // the others decide() made since are not recorded, and a judge may forget them. An error means nothing of
  // them may be published. Default: nothing.
  virtual Status record(const std::vector<wire::pb::Decision>& decisions) {
    (void)decisions;
    return Status();
  }
  // The revision and fingerprint of the decision recorded last for `subject`; nullopt when none was.
  // Revisions continue from here after a restart. Default: none (revisions start at 1 in each process).
  struct LastRevision {
    uint64_t revision = 0;
    std::string fingerprint;
  };
  virtual Result<std::optional<LastRevision>> last_revision(const wire::pb::SubjectKey& subject) {
    (void)subject;
    return std::optional<LastRevision>();
  }
  // The current decision for `subject` under the policy.
  virtual Result<wire::pb::Decision> decide(const wire::pb::SubjectKey& subject) = 0;
  // Every subject key with at least one stored vote, in a stable order.
  virtual Result<std::vector<wire::pb::SubjectKey>> subjects() = 0;
  // Decisions of the subject keys for which some stored vote attests `image_digest`.
  virtual Result<std::vector<wire::pb::Decision>> find_by_image(const std::string& image_digest) = 0;
  // Decisions for `subject` (an empty recipe_path or repo matches any).
  virtual Result<std::vector<wire::pb::Decision>> find_by_subject(const wire::pb::SubjectKey& subject) = 0;
  // Called before answering `queries` (find_by_image, find_by_subject, decide): may do ahead, in one pass, the
  // work their answers share, such as verifying the stored votes of subjects not read yet. The answers must not
  // depend on it; errors are left for them to report. Default: nothing.
  virtual void prepare(const std::vector<wire::pb::Query>& queries) { (void)queries; }
  // Whether `decision` (from decide()) is what the store recorded last for its subject, the time it was made
  // aside. Default: true (nothing to catch up).
  virtual Result<bool> is_recorded(const wire::pb::Decision& decision) {
    (void)decision;
    return true;
  }
  // Stored rows left out of decisions since the last call (their envelope does not verify here, or their
  // columns lie), for the log. Default: none.
  virtual std::vector<DistrustedRow> take_distrusted() { return {}; }
};

}  // namespace quorate::quorum
