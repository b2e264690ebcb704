// A policy file loaded with its roster, verifying attestations (DSSE envelopes or Sigstore bundles) through the
// attest module and importing them into a store as verified or rejected.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/attest/roster.h"
#include "quorate/core/status.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum {

// What verifying one attestation yields: the vote it casts, the statement's start time, and the envelope in
// canonical DSSE JSON (a bundle is reduced to its envelope) with its digest, the store's idempotency key.
struct VerifiedAttestation {
  Vote vote;  // vote.node_id is the roster node of the signing key; vote.envelope_digest is envelope_digest
  int64_t started_on = 0;
  std::string envelope;
  std::string envelope_digest;
};

// The outcome of checking one attestation: an attestation, or the typed reason it was refused with its Status
// (kBadInput for kMalformed, kVerification for the others). After a key failure that follows a good
// signature (key not valid at its time, node mismatch; see attest::Verdict) the attestation is set too.
struct Checked {
  attest::Failure failure = attest::Failure::kNone;
  Status status;
  std::optional<VerifiedAttestation> attestation;
  bool ok() const { return failure == attest::Failure::kNone; }
};

// The policy file (docs/policy.md) with the roster's public keys. Immutable after load(); verify() may be
// called from several threads at once.
class Verifier {
 public:
  // Reads the policy file, its [[nodes]] and its roster file. bad_input naming the file and key when it is
  // malformed or cannot be met, or when a file is not a regular file (read_regular_file: a daemon's config
  // names the policy, and a FIFO would hold its start); not_found when a file is missing.
  static Result<Verifier> load(const std::filesystem::path& policy_path);
  Verifier(Verifier&&) noexcept;
  Verifier& operator=(Verifier&&) noexcept;
  ~Verifier();

  const Policy& policy() const;

  // Verifies a DSSE envelope (JSON) or a Sigstore bundle v0.3 against the roster: signature by a roster key,
  // in-toto payload type, Statement v1 with a SLSA Provenance v1 predicate, and a key valid at the statement's
  // finishedOn. kVerification for a claim that does not hold (bad signature, unknown, revoked or expired key),
  // kBadInput for malformed bytes.
  Result<VerifiedAttestation> verify(std::string_view bytes) const;
  // The same, with the reason typed. With `publisher` set, the signer must also be that node (the node that
  // published the attestation on the wire): kNotPublisher otherwise.
  Checked check(std::string_view bytes, const std::string& publisher = {}) const;

  // Votes whose columns rest on an envelope verified by this Verifier in this process: import_attestations
  // and VerifiedVotes record them, and VerifiedVotes verifies a stored row again only when its columns are not
  // here, so an attestation verified at import is never verified a second time (issue 17). Thread-safe; a
  // SHA-256 of the columns (32 bytes) per vote. Bounded: the latest kVouchedGeneration to 2 x kVouchedGeneration
  // votes vouched for are remembered (about 40 MB at most); a row older than that is verified again when read.
  static constexpr size_t kVouchedGeneration = 262144;
  void vouch(const Vote& vote, int64_t started_on) const;
  bool vouched(const Vote& vote, int64_t started_on) const;
  size_t vouched_count() const;  // votes remembered now

 private:
  struct Impl;
  explicit Verifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One attestation offered for import: its bytes and, when it came over the wire, the node that published it.
struct Incoming {
  std::string_view bytes;
  std::string publisher;  // empty: not checked (files, `store import`)
};

// The outcome of importing one attestation.
struct ImportOutcome {
  enum class Kind { kStored, kDuplicate, kRejected };
  Kind kind = Kind::kRejected;
  std::string envelope_digest;  // of the canonical envelope when verified, of the bytes when rejected
  attest::Failure failure = attest::Failure::kNone;  // kRejected: the typed reason
  Status reason;                                     // kRejected: why (code kVerification or kBadInput)
  std::optional<SubjectKey> subject;
  std::optional<Vote> vote;  // kStored and kDuplicate: the vote as verified in this process
  int64_t started_on = 0;    // with vote: the statement's start time
};
const char* import_kind_name(ImportOutcome::Kind k);  // "stored" | "duplicate" | "rejected"

struct ImportOptions {
  // Threads verifying signatures (the costly part) before the batch is written; 1 verifies in the calling
  // thread. Outcomes and stored rows do not depend on it.
  unsigned threads = 1;
};

// Verifies each of `attestations` and stores it, verified or rejected with the reason, all in one store
// transaction. A verification failure is an outcome; the Status is an error only when the store fails (then
// nothing of the batch is stored). Outcomes are in the order of `attestations`.
// The one ingest path: `quorate store import`, `quorate verify` files and the verifier daemon all use it.
Result<std::vector<ImportOutcome>> import_attestations(Store& store, const Verifier& verifier,
                                                       std::span<const Incoming> attestations, int64_t received_at,
                                                       const ImportOptions& options = {});
Result<std::vector<ImportOutcome>> import_attestations(Store& store, const Verifier& verifier,
                                                       std::span<const std::string> attestations, int64_t received_at,
                                                       const ImportOptions& options = {});

// Checks every attestation (`threads` at a time), in order; the result does not depend on scheduling. Reads
// only the Verifier: it may run on any thread, while the store is being written by another.
std::vector<Checked> check_all(const Verifier& verifier, std::span<const Incoming> attestations, unsigned threads);

// The second half of import_attestations (which is check_all, then this): stores `attestations` with their
// checks (`checked[i]` is check_all's result for `attestations[i]`) in one store transaction, and vouches for
// the votes stored. Same outcomes and errors as import_attestations. The verifier daemon checks its next batch
// on worker threads while it stores the current one with this (docs/wire.md, "The verifier's loop").
Result<std::vector<ImportOutcome>> store_checked(Store& store, const Verifier& verifier,
                                                 std::span<const Incoming> attestations,
                                                 std::span<const Checked> checked, int64_t received_at);

}  // namespace quorate::quorum
