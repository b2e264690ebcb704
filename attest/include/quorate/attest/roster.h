// The roster of trusted node keys ([[nodes]] tables in TOML) and the verification of an attestation against it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/statement.h"
#include "quorate/core/status.h"

namespace quorate::attest {

// When a roster entry lets its key sign: Unix seconds, each bound optional.
struct KeyWindow {
  std::optional<int64_t> not_before;  // the key signs nothing before
  std::optional<int64_t> not_after;   // the key signs nothing after
  std::optional<int64_t> revoked_at;  // signatures at or after this time are void
};

// One [[nodes]] table: id, public_key (PEM text, or a path relative to the file), optional RFC 3339 times.
struct RosterEntry {
  std::string node_id;
  PublicKey key;
  std::optional<int64_t> not_before;  // Unix seconds: the key signs nothing before
  std::optional<int64_t> not_after;   // the key signs nothing after
  std::optional<int64_t> revoked_at;  // signatures at or after this time are void
  KeyWindow window() const { return {not_before, not_after, revoked_at}; }
};

// Why an attestation did not verify. Each has its own value so callers branch on it, not on messages.
enum class Failure {
  kNone,
  kMalformed,         // not an envelope/bundle, bad JSON, bad base64, too large, bad statement (kBadInput)
  kWrongPayloadType,  // payloadType is not application/vnd.in-toto+json (kVerification)
  kWrongStatement,    // _type, predicateType or buildType is not ours (kVerification)
  kUnknownKey,        // no signature names a key of the roster (kVerification)
  kBadSignature,      // the signature does not verify with the key it names (kVerification)
  kNotYetValid,       // signed before the key's not_before (kVerification)
  kExpired,           // signed after the key's not_after (kVerification)
  kRevoked,           // signed at or after the key's revoked_at (kVerification)
  kNodeMismatch,      // the statement's builder.id is not a node id the key is listed under (kVerification)
  kNotPublisher,      // signed by another node than the one that published it on the wire (kVerification)
};
// "malformed", "wrong payload type", "wrong statement type", "unknown key", "bad signature", "not yet valid",
// "expired", "revoked", "node mismatch", "signer is not the publishing node"; "ok" for kNone.
const char* failure_name(Failure f);

// The one rule for whether a key vouches for a signature made at `t`, given the windows of every roster entry
// that lists the key (under any node id): the verifier, `attest verify` and the quorum engine all ask it.
// A revocation in any entry wins (kRevoked): a revoked key is presumed compromised, whichever node lists it.
// Otherwise kNone when some window holds `t`; else kNotYetValid or kExpired (of the first entry);
// kUnknownKey when `windows` is empty.
Failure key_validity(const std::vector<KeyWindow>& windows, int64_t t);

// A verified attestation: the envelope, its statement and who signed it.
struct Attestation {
  Envelope envelope;
  Statement statement;
  std::string keyid;    // the key whose signature verified
  std::string node_id;  // the roster node id (or, with verify_with_key, the statement's builder.id)
};

// The outcome of one verification: failure == kNone and attestation set, or a failure with its Status
// (kBadInput for kMalformed, kVerification for the others; the message says what and names the keyid).
// For the key failures that come after the signature verified (kNotYetValid, kExpired, kRevoked,
// kNodeMismatch) the attestation is set too, so that a caller can say what the key signed; ok() is false.
struct Verdict {
  Failure failure = Failure::kNone;
  Status status;
  std::optional<Attestation> attestation;
  bool ok() const { return failure == Failure::kNone; }
};

// Trusted node keys. Immutable after creation; verify() may be called from several threads at once.
class Roster {
 public:
  Roster() = default;
  // bad_input when a node id is empty.
  static Result<Roster> create(std::vector<RosterEntry> entries);
  // Reads a roster file's [[nodes]] tables (other top-level keys are ignored, so a policy file can hold them).
  static Result<Roster> load(const std::filesystem::path& path);

  const std::vector<RosterEntry>& entries() const { return entries_; }
  // Entries listing `keyid` (several when a key is listed under several ids or windows).
  std::vector<const RosterEntry*> find(std::string_view keyid) const;

  // Verifies a DSSE envelope or Sigstore bundle (`bytes`): size, strict JSON, payload type, a signature by a
  // roster key, the statement, that the key is listed under the statement's builder.id, and the key's
  // validity (key_validity over every entry listing it) at `at` (default: the statement's finishedOn).
  Verdict verify(std::string_view bytes, std::optional<int64_t> at = std::nullopt) const;

 private:
  std::vector<RosterEntry> entries_;
};

// The [[nodes]] tables of TOML text; `origin` is the file it came from (relative public_key paths resolve
// against its directory; messages name it). bad_input naming the file, node and key when malformed (unknown
// keys in a [[nodes]] table included); not_found when a public key file is missing; io when it cannot be read
// (a name too long, a directory); unsupported for a key of a type no signature uses (X25519).
Result<std::vector<RosterEntry>> parse_roster_nodes(std::string_view toml_text, const std::filesystem::path& origin);

// The [[nodes]] of a roster's or a policy's TOML text, with those of the roster file a policy names in a
// top-level `roster = "FILE"` (relative to `origin`'s directory): the keys a policy trusts, the one rule the
// verifier, `quorate verify` and `quorate roster check` load them by. Other keys are left to the caller.
Result<std::vector<RosterEntry>> roster_or_policy_entries(std::string_view toml_text,
                                                          const std::filesystem::path& origin);

// roster_or_policy_entries of the file at `path`.
Result<std::vector<RosterEntry>> load_roster_or_policy(const std::filesystem::path& path);

// `quorate roster check`: each node's keys and windows at `now`, and the warnings: a node with no key valid at
// `now`, a key whose window ends (not_after or revoked_at) within `within` seconds of `now`, one key listed under
// two node ids (the quorum engine then counts those ids as one voter).
struct RosterCheck {
  std::vector<std::string> lines;     // "node-a  <keyid>  ed25519  valid  not_before=... not_after=..."
  std::vector<std::string> warnings;  // one sentence each
};
RosterCheck check_roster(const std::vector<RosterEntry>& entries, int64_t now, int64_t within);

// Verifies against one public key (no roster, no validity window): payload type, signature, statement.
Verdict verify_with_key(std::string_view bytes, const PublicKey& key);

}  // namespace quorate::attest
