// libFuzzer target for the gate's AdmissionReview parsing (bodies from the network) and the quorum policy text
// parsing: a value or a bad_input Status, never a crash, an exception, UB or a hang; an accepted review's uid
// and images survive into a response, and a response is valid JSON whatever its message holds.
//
// Input: the first byte picks the parser (its value minus '0', modulo 2, so seeds start with a digit); the rest
// is the text. 0: an AdmissionReview body; 1: a policy TOML (parse_rules, its [[nodes]] with keys relative to a
// directory that does not exist, and Policy::create over them and over a fixed three-node Trust).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "quorate/attest/roster.h"
#include "quorate/core/sha256.h"
#include "quorate/gate/admission.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/trust.h"

namespace {

namespace gate = quorate::gate;
namespace quorum = quorate::quorum;
using nlohmann::json;

void check(bool ok) {
  if (!ok) std::abort();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A response must be JSON the API server can read, whatever the message (it carries image names and errors).
json response_of(const std::string& uid, bool allowed, const std::string& message) {
  json doc = json::parse(gate::response_json(uid, allowed, message), nullptr, false);
  check(doc.is_object() && doc["response"].is_object());
  check(doc["response"]["uid"] == uid && doc["response"]["allowed"] == allowed);
  return doc;
}

void fuzz_review(std::string_view body) {
  response_of("uid", false, std::string(body.substr(0, 256)));  // raw bytes, invalid UTF-8 included
  auto review = gate::parse_review(body);
  if (!review.ok()) return check(review.status().is_bad_input());
  check(!review->uid.empty());
  std::string message;
  for (const auto& ref : review->images) {
    check(!ref.image.empty() && !ref.where.empty());
    auto digest = gate::pinned_digest(ref.image);
    if (digest.ok()) {
      check(quorate::check_digest(*digest).ok());
      check(ends_with(ref.image, "@" + *digest));
    } else {
      check(digest.status().is_bad_input());
      message += digest.status().message() + "; ";
    }
  }
  response_of(review->uid, true, "");
  response_of(review->uid, false, message + review->kind + " " + review->namespace_ + "/" + review->name);
}

const quorum::Trust& fixed_trust() {
  static const quorum::Trust trust = quorum::Trust::create({{"node-a", std::string(64, 'a'), {}, {}, {}},
                                                            {"node-b", std::string(64, 'b'), {}, {}, {}},
                                                            {"node-c", std::string(64, 'c'), {}, {}, {}}})
                                         .value();
  return trust;
}

void check_policy(const quorum::QuorumRules& rules, const quorum::Trust& trust) {
  auto policy = quorum::Policy::create(rules, trust, "policy.toml");
  if (!policy.ok()) return check(policy.status().is_bad_input());
  check(policy->rules().threshold >= 1 && static_cast<size_t>(policy->rules().threshold) <= trust.voters().size());
  for (const auto& r : policy->rules().required) check(trust.voter_of_node(r).has_value());
  check(policy->digest() == quorate::sha256_digest(policy->canonical_json()));
  check(!json::parse(policy->canonical_json(), nullptr, false).is_discarded());
}

void fuzz_policy(std::string_view text) {
  auto rules = quorum::parse_rules(text, "policy.toml");
  if (!rules.ok()) return check(rules.status().is_bad_input());
  check_policy(*rules, fixed_trust());
  // PEM text is parsed; a key path resolves under a directory that does not exist. Refusals come with several
  // codes (not_found, io for a name longer than NAME_MAX, unsupported for an X25519 key); none is internal.
  auto entries = quorate::attest::parse_roster_nodes(text, "/nonexistent-quorate-fuzz/policy.toml");
  if (!entries.ok()) return check(entries.status().code() != quorate::Code::kInternal);
  std::vector<quorum::TrustedKey> keys;
  for (const auto& e : *entries) keys.push_back({e.node_id, e.key.keyid(), e.not_before, e.not_after, e.revoked_at});
  auto trust = quorum::Trust::create(std::move(keys));
  if (trust.ok()) check_policy(*rules, *trust);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (static_cast<uint8_t>(data[0] - '0') % 2 == 0) {
    fuzz_review(text);
  } else {
    fuzz_policy(text);
  }
  return 0;
}
