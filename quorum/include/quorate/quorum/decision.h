// The quorum engine: a pure function from verified votes, a policy and a time to a Decision.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quorate/quorum/policy.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum {

// A counted vote, or a dissenting one: who, and what they attested.
struct Ballot {
  std::string node;    // the voter (smallest node id of its roster group)
  std::string digest;  // the matched digest (image or content, by the policy)
  std::string image_digest;
  std::string config_digest;
  std::string keyid;
  int64_t signed_at = 0;
  std::string envelope_digest;
};

// A vote that does not count, and why.
struct VoidVote {
  std::string node_id;  // as the vote claims it
  std::string keyid;
  std::string image_digest;
  std::string config_digest;
  std::string envelope_digest;
  std::string reason;  // "unknown key", "revoked", "expired", "not yet valid", "too old", "equivocation", ...
};

// The outcome for one subject key. Every list is sorted, so equal inputs give equal bytes whatever the order
// in which the votes arrived.
struct Decision {
  SubjectKey subject;
  bool accepted = false;
  std::string digest;                      // the accepted digest (image or content digest), empty if rejected
  std::vector<std::string> image_digests;  // image digests of the agreeing votes (several under match=content)
  std::vector<Ballot> agreeing;            // votes for `digest` (or for the leading digest when rejected)
  std::vector<Ballot> dissenting;          // counted votes for any other digest
  std::vector<VoidVote> void_votes;
  std::vector<std::string> missing;       // voters with no vote at all for this subject key
  std::vector<std::string> equivocators;  // voters that signed two different digests for this subject key
  std::string reason;                     // in words
  std::string policy_digest;
  int64_t time = 0;  // the `now` the decision was made at

  // Canonical JSON (quorate/core/json.h); times in RFC 3339. Every string in a decision comes from parsed
  // JSON, TOML or our own text, so it is valid UTF-8; bad_input otherwise.
  Result<std::string> to_json() const;
  // A few lines for people, each masked by mask_control (core/display.h): the subject and reasons are what
  // attestations said.
  std::string to_text() const;
};

// Decides `subject` from `votes` (votes for other subject keys are ignored) under `policy` at time `now`.
// Deterministic: any permutation of `votes` gives the same Decision. Never fails; bad votes are void votes.
Decision decide(const Policy& policy, const SubjectKey& subject, std::span<const Vote> votes, int64_t now);
// The first time after `now` at which decide() over the same votes may say something else than at `now` (a vote
// grows older than max_age, or one signed in the future comes within the clock skew); INT64_MAX when never.
// What a decision says does not change before then (its `time` field aside).
int64_t decided_until(const Policy& policy, std::span<const Vote> votes, int64_t now);
// Decision::to_json through a nlohmann document and canonical_json(): the reference the direct writer of
// to_json() equals byte for byte (for tests).
Result<std::string> decision_reference_json(const Decision& d);

}  // namespace quorate::quorum
