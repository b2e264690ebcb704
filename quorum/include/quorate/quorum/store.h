// The attestation store: verified and rejected attestations and decisions in SQLite (WAL, one transaction a write).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/quorum/decision.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum {

// A verified attestation as stored: the envelope bytes and what the engine needs from them.
struct StoredAttestation {
  int64_t id = 0;               // row id, assigned by the store
  std::string envelope_digest;  // "sha256:" of the DSSE envelope's canonical JSON: the idempotency key
  std::string envelope;         // the DSSE envelope JSON as stored
  Vote vote;                    // vote.envelope_digest == envelope_digest
  int64_t started_on = 0;       // statement times (runDetails), Unix seconds; vote.signed_at is finishedOn
  int64_t received_at = 0;
};

// An attestation that failed verification, kept with the reason so that an auditor can see what was refused.
struct Rejection {
  int64_t id = 0;
  std::string envelope_digest;  // "sha256:" of the bytes as received
  std::string envelope;         // the bytes as received
  std::string code;             // code_name() of the verification Status
  std::string reason;           // its message
  int64_t received_at = 0;
  std::string publisher;  // the node it came from; empty when it was imported from a file
};

struct StoredDecision {
  int64_t id = 0;
  SubjectKey subject;
  std::string policy_digest;
  bool accepted = false;
  std::string digest;
  std::string json;  // Decision::to_json(), or the verifier daemon's compact record (docs/wire.md)
  int64_t decided_at = 0;
  int64_t revision = 0;     // as published by the verifier daemon; 0: not published, or recorded before schema 6
  std::string fingerprint;  // the daemon's fingerprint of its content; '' when not known
};

struct StoreOptions {
  // Checkpoint the WAL on a thread of the Store's own (its own connection, PASSIVE checkpoints) instead of inside
  // the writer's COMMIT every 1000 pages: the writing thread mostly only appends to the WAL and fsyncs it. When
  // the WAL reaches Store::kWalRestartPages, the writing thread copies what the background thread has not yet
  // (see there). false: SQLite's automatic checkpoint on the writing thread (the baseline
  // of bench/store_bench).
  bool background_checkpoint = true;
};

// One SQLite database. Not thread-safe: one Store per thread (SQLite serializes writers across processes).
// Every write is one transaction, or part of the caller's transaction(); WAL with synchronous=FULL, so what a
// call reported as written survives a crash of the process or the machine.
class Store {
 public:
  // Opens or creates the store and brings its schema up to date; unsupported when the file was written by a
  // newer schema, io when SQLite fails.
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path);
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& path, const StoreOptions& options);
  // Opens an existing store for reading only (never creates, migrates or writes it), safe next to a process
  // writing it: not_found when there is no file, unsupported when its schema version is not kSchemaVersion,
  // io when SQLite fails (a file that is not a store fails at open or at its first read). Writes fail.
  static Result<std::unique_ptr<Store>> open_read_only(const std::filesystem::path& path);
  ~Store();

  // The schema version of the file (PRAGMA user_version), kSchemaVersion after open().
  static constexpr int kSchemaVersion = 9;
  Result<int> schema_version();

  // Runs `body` inside BEGIN IMMEDIATE … COMMIT; rolls back when it returns an error. Not reentrant. When the
  // background checkpointer failed since the last call, returns its error instead (once), without running `body`.
  Status transaction(const std::function<Status()>& body);

  // The background checkpointer wakes when a commit leaves at least kWalCheckpointPages in the WAL (SQLite's
  // default automatic checkpoint) and runs a PASSIVE checkpoint. When a commit leaves kWalRestartPages (32 MiB at
  // 4 KiB pages) or more, the writing thread copies the rest itself after the background checkpoint ends, so that
  // the WAL starts over. journal_size_limit truncates a WAL file larger than kWalLimitBytes when it starts over.
  static constexpr int kWalCheckpointPages = 1000;
  static constexpr int kWalRestartPages = 8192;
  static constexpr int64_t kWalLimitBytes = 64 << 20;
  struct CheckpointStats {
    int64_t background = 0;        // checkpoints the background thread ran (not counting busy ones)
    int64_t background_pages = 0;  // WAL frames they found copied into the database file, summed
    int64_t writer = 0;            // checkpoints the writing thread ran itself (WAL at kWalRestartPages or more)
    int largest_wal_pages = 0;     // the largest WAL a commit of this Store left
  };
  CheckpointStats checkpoint_stats() const;

  // Idempotent inserts: true when the row is new, false when that envelope digest was already there.
  Result<bool> add_attestation(const StoredAttestation& a);
  // A rejection is evidence of what a node sent, kept for auditors; a node that sends garbage could otherwise
  // fill the verifier's disk without a signing key. So of one publisher's rejections the store keeps the first
  // kMaxRejectionsPerPublisher, of at most kMaxRejectionBytesPerPublisher together; past that it returns false
  // and keeps nothing (the daemon still counts them). Rejections without a publisher (files) are not bounded.
  static constexpr uint64_t kMaxRejectionsPerPublisher = 1000;
  static constexpr uint64_t kMaxRejectionBytesPerPublisher = uint64_t{64} << 20;
  Result<bool> add_rejection(const Rejection& r);
  // `revision` and `fingerprint`: the verifier daemon's (0 and '' for decisions it does not publish).
  // `record`: what goes into the row's `decision` column; empty: d.to_json().
  Result<int64_t> add_decision(const Decision& d, int64_t revision = 0, const std::string& fingerprint = {},
                               const std::string& record = {});

  // Queries; every result sorted (by subject key, then row id).
  Result<std::vector<SubjectKey>> subjects();
  Result<std::vector<SubjectKey>> subjects_with_image(const std::string& image_digest);
  // Subject keys for a commit; `source_uri` empty means any repository.
  Result<std::vector<SubjectKey>> subjects_with_commit(const std::string& commit, const std::string& source_uri);
  // Rows as stored, without envelope bytes. Their columns are a cache, not a root of trust: anything that
  // decides reads them through VerifiedVotes, which checks them against envelopes verified in its process.
  Result<std::vector<StoredAttestation>> rows(const SubjectKey& subject);
  // Only the rows of `subject` with an id above `after_id` (row ids only grow: rows are never deleted), for a
  // reader that holds the older ones already (the verifier daemon's vote cache).
  Result<std::vector<StoredAttestation>> rows(const SubjectKey& subject, int64_t after_id);
  Result<std::vector<StoredAttestation>> all_rows();
  // The envelope bytes of row `id`; not_found when there is no such row.
  Result<std::string> envelope(int64_t id);
  // Without envelope bytes (list), and one with them by envelope digest or a unique prefix of its hex (show).
  Result<std::vector<StoredAttestation>> attestations();
  Result<std::vector<Rejection>> rejections();
  Result<std::vector<StoredDecision>> decisions();
  // The decision recorded last for `subject`, if any.
  Result<std::optional<StoredDecision>> last_decision(const SubjectKey& subject);
  // The highest revision recorded for `subject` (at least its number of decision rows, which bounds what a
  // verifier before schema 6 published) and the fingerprint of its last decision; nullopt when none.
  struct LastRevision {
    int64_t revision = 0;
    std::string fingerprint;
  };
  Result<std::optional<LastRevision>> last_revision(const SubjectKey& subject);
  Result<std::optional<StoredAttestation>> find_attestation(const std::string& id);
  Result<std::optional<Rejection>> find_rejection(const std::string& id);
  // PRAGMA integrity_check, and every attestation row filed under its subject key and image (the lookup tables
  // of schema 8): ok, or bad_input with the findings.
  Status check_integrity();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::quorum
