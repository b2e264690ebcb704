// The quorum policy: the rules for one decision (k, match mode, conflicts, age, required nodes) over a Trust.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/quorum/trust.h"

namespace quorate::quorum {

// Which digest nodes must agree on (DESIGN.md, Identities).
enum class MatchMode { kImage, kContent };
// What a vote for another digest does: kReject blocks acceptance; kMajority lets k agreeing votes win unless
// another digest also has k.
enum class ConflictMode { kReject, kMajority };

const char* match_mode_name(MatchMode m);        // "image" | "content"
const char* conflict_mode_name(ConflictMode m);  // "reject" | "majority"

// The top-level keys of a policy file. Defaults: threshold 1, image, reject, no max age, nothing required.
struct QuorumRules {
  int64_t threshold = 1;
  MatchMode match = MatchMode::kImage;
  ConflictMode on_conflict = ConflictMode::kReject;
  std::optional<int64_t> max_age;     // seconds; a vote signed more than this before `now` does not count
  std::vector<std::string> required;  // node ids that must be among the agreeing nodes
  // `run_environment = "pinned"`: a vote whose run steps executed on the host's toolchain does not count.
  bool pinned_run_environment = false;
};

// Rules bound to a Trust, checked to be meetable. Immutable; safe to share between threads.
class Policy {
 public:
  // bad_input when the policy cannot be met: threshold < 1, threshold > the number of distinct voters (a key
  // listed under two node ids, or a node id with two keys, counts once), or a required node id not in the
  // roster. `what` names the file in messages.
  static Result<Policy> create(QuorumRules rules, Trust trust, const std::string& what = "policy");

  const QuorumRules& rules() const { return rules_; }
  const Trust& trust() const { return trust_; }
  // Canonical JSON of the rules and every roster entry (sorted keys, no whitespace).
  const std::string& canonical_json() const { return json_; }
  // "sha256:" of canonical_json(): what a decision records as the policy it was made under.
  const std::string& digest() const { return digest_; }

 private:
  QuorumRules rules_;
  Trust trust_;
  std::string json_;
  std::string digest_;
};

// Parses the top-level keys of a policy TOML text (threshold, match, on_conflict, max_age, run_environment,
// required); `roster` and `nodes` are accepted and left to the roster loader; any other key is an error.
// bad_input naming `what` and the key otherwise.
Result<QuorumRules> parse_rules(std::string_view toml_text, const std::string& what);

}  // namespace quorate::quorum
