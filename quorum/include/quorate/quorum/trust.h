// The trusted material of a verifier: roster keys with their validity, grouped into independent voters.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::quorum {

// One roster entry, as the quorum sees it (the PEM is the attest module's business; the keyid identifies it).
struct TrustedKey {
  std::string node_id;
  std::string keyid;
  std::optional<int64_t> not_before;  // Unix seconds; the key signs nothing before this
  std::optional<int64_t> not_after;   // the key signs nothing after this
  std::optional<int64_t> revoked_at;  // signatures at or after this time are void
};

// Why a key does not vouch for a signature made at a given time.
enum class KeyValidity { kValid, kUnknown, kNotYetValid, kExpired, kRevoked };
const char* key_validity_name(KeyValidity v);

// The roster, checked once at load (sigstore-go's split: trusted material apart from the per-decision policy).
// Keys are grouped into *voters*: entries that share a node id or a keyid are one voter, so the same public key
// listed under two node ids, or a node id with two keys, casts one vote. A voter is named by the smallest node
// id in its group. Immutable after create(); safe to share between threads.
class Trust {
 public:
  Trust() = default;
  // bad_input naming the entry when a keyid is not 64 lowercase hex or a node id is empty.
  static Result<Trust> create(std::vector<TrustedKey> keys);

  // Every entry, sorted by (node_id, keyid).
  const std::vector<TrustedKey>& keys() const { return keys_; }
  // The voter names, sorted.
  const std::vector<std::string>& voters() const { return voters_; }
  // The voter a node id or keyid belongs to, if any.
  std::optional<std::string> voter_of_node(const std::string& node_id) const;
  std::optional<std::string> voter_of_key(const std::string& keyid) const;
  // Every node id of a voter, sorted.
  std::vector<std::string> node_ids_of(const std::string& voter) const;
  // Whether an entry lists `keyid` under `node_id` (the statement's builder.id must be one the key is listed under).
  bool lists(const std::string& node_id, const std::string& keyid) const;
  // Whether `keyid` vouches for a signature made at `t`: attest::key_validity over every entry listing it
  // (a revocation under any node id wins), the same rule the verifier applies at ingest.
  KeyValidity validity(const std::string& keyid, int64_t t) const;

 private:
  std::vector<TrustedKey> keys_;
  std::vector<std::string> voters_;
  std::map<std::string, std::string> voter_by_node_;
  std::map<std::string, std::string> voter_by_key_;
};

}  // namespace quorate::quorum
