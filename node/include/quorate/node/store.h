// The node's own store: every attestation it signed, under its sequence number (SQLite, WAL, synchronous).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::node {

struct StoredAttestation {
  uint64_t sequence = 0;
  std::string request_id;
  std::string image_digest;
  std::string envelope;  // DSSE JSON bytes as signed
};

// One run of the node over this store (wire.proto's Incarnation): a random non-zero id and the first sequence
// number the run assigns. Restoring the file from a backup, or wiping it, makes sequence numbers repeat; the
// incarnation a follower sees then changes, and the lineage tells it where to go back to.
struct Incarnation {
  uint64_t id = 0;
  uint64_t first_sequence = 0;
};

// Sequence numbers are 1, 2, 3, ... without gaps: the next one is assigned inside the insert transaction,
// and a commit is durable (synchronous=FULL) before append() returns, so a node that publishes only after
// append() never publishes what a crash could take back. Thread-safe (one connection behind a mutex).
class NodeStore {
 public:
  // Opens or creates `path`; migrates older schemas. io/bad_input naming the file on failure.
  static Result<std::unique_ptr<NodeStore>> open(const std::filesystem::path& path);
  ~NodeStore();

  // Stores one attestation under the next sequence number and returns that number.
  Result<uint64_t> append(const std::string& request_id, const std::string& image_digest, const std::string& envelope,
                          int64_t stored_at_unix);
  // Up to `max_count` attestations with sequence > `since`, oldest first.
  Result<std::vector<StoredAttestation>> since(uint64_t since, size_t max_count);
  // The newest sequence number (0 when empty).
  Result<uint64_t> last_sequence();
  // Starts a new incarnation (a random non-zero id from the OS; first_sequence = last_sequence() + 1) and
  // stores it durably before returning it. The node daemon calls it once each time it opens the store.
  Result<Incarnation> begin_incarnation();
  // The latest `max_count` incarnations, oldest first (empty before the first begin_incarnation()).
  Result<std::vector<Incarnation>> lineage(size_t max_count);
  // The attestation stored for `request_id`, if any (for resubmissions after a restart).
  Result<std::optional<StoredAttestation>> find_request(const std::string& request_id);

  struct Impl;

 private:
  explicit NodeStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::node
