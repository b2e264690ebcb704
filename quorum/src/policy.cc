// Policy: the top-level keys of a policy file, the meetability checks, and the canonical form that is digested.
#include "quorate/quorum/policy.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "quorate/config/toml_file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"

namespace quorate::quorum {
namespace {

std::string where(const std::string& what, const toml::node& n) {
  return what + ":" + std::to_string(n.source().begin.line);
}

Result<std::string> get_string(const std::string& what, const toml::node& n, const char* key) {
  if (!n.is_string()) return Status::bad_input(where(what, n) + ": '" + key + "' must be a string");
  return std::string(n.as_string()->get());
}

nlohmann::json optional_time(const std::optional<int64_t>& t) {
  return t ? nlohmann::json(format_rfc3339(*t)) : nlohmann::json(nullptr);
}

Status parse_key(QuorumRules& rules, const std::string& what, const std::string& key, const toml::node& n) {
  if (key == "threshold") {
    if (!n.is_integer()) return Status::bad_input(where(what, n) + ": 'threshold' must be an integer");
    rules.threshold = n.as_integer()->get();
  } else if (key == "match") {
    std::string v = QR_TRY(get_string(what, n, "match"));
    if (v == "image")
      rules.match = MatchMode::kImage;
    else if (v == "content")
      rules.match = MatchMode::kContent;
    else
      return Status::bad_input(where(what, n) + ": 'match' must be \"image\" or \"content\", not \"" + v + "\"");
  } else if (key == "on_conflict") {
    std::string v = QR_TRY(get_string(what, n, "on_conflict"));
    if (v == "reject")
      rules.on_conflict = ConflictMode::kReject;
    else if (v == "majority")
      rules.on_conflict = ConflictMode::kMajority;
    else
      return Status::bad_input(where(what, n) + ": 'on_conflict' must be \"reject\" or \"majority\", not \"" + v +
                               "\"");
  } else if (key == "max_age") {
    std::string v = QR_TRY(get_string(what, n, "max_age"));
    auto seconds = parse_duration(v);
    if (!seconds.ok() || *seconds <= 0) {
      return Status::bad_input(where(what, n) + ": 'max_age' must be a positive duration such as \"30d\", not \"" + v +
                               "\"");
    }
    // decide() adds max_age to signing times (years 0 to 9999): a bound keeps the sum far from overflowing.
    constexpr int64_t kMaxMaxAge = int64_t{10000} * 366 * 86400;
    if (*seconds > kMaxMaxAge) {
      return Status::bad_input(where(what, n) + ": 'max_age' is more than 10000 years: \"" + v + "\"");
    }
    rules.max_age = *seconds;
  } else if (key == "run_environment") {
    std::string v = QR_TRY(get_string(what, n, "run_environment"));
    if (v == "pinned")
      rules.pinned_run_environment = true;
    else if (v == "any")
      rules.pinned_run_environment = false;
    else
      return Status::bad_input(where(what, n) + ": 'run_environment' must be \"pinned\" or \"any\", not \"" + v + "\"");
  } else if (key == "required") {
    const toml::array* a = n.as_array();
    if (!a) return Status::bad_input(where(what, n) + ": 'required' must be an array of node ids");
    for (const auto& item : *a) rules.required.push_back(QR_TRY(get_string(what, item, "required")));
  } else if (key != "roster" && key != "nodes") {
    return Status::bad_input(where(what, n) + ": unknown key '" + key + "'");
  }
  return Status();
}

}  // namespace

const char* match_mode_name(MatchMode m) { return m == MatchMode::kImage ? "image" : "content"; }
const char* conflict_mode_name(ConflictMode m) { return m == ConflictMode::kReject ? "reject" : "majority"; }

Result<QuorumRules> parse_rules(std::string_view toml_text, const std::string& what) {
  toml::table table = QR_TRY(config::parse_toml(toml_text, what));
  QuorumRules rules;
  if (!table.contains("threshold")) return Status::bad_input(what + ": missing required key 'threshold'");
  for (const auto& [k, v] : table) QR_RETURN_IF_ERROR(parse_key(rules, what, std::string(k.str()), v));
  return rules;
}

Result<Policy> Policy::create(QuorumRules rules, Trust trust, const std::string& what) {
  const auto voters = trust.voters().size();
  if (rules.threshold < 1) {
    return Status::bad_input(what + ": threshold " + std::to_string(rules.threshold) + " is less than 1");
  }
  if (static_cast<uint64_t>(rules.threshold) > voters) {
    return Status::bad_input(what + ": threshold " + std::to_string(rules.threshold) +
                             " cannot be met: the roster has " + std::to_string(voters) + " distinct signer(s) (" +
                             std::to_string(trust.keys().size()) +
                             " entries; a key shared by node ids, or a node id with several keys, counts once)");
  }
  for (const auto& r : rules.required) {
    if (!trust.voter_of_node(r)) return Status::bad_input(what + ": required node '" + r + "' is not in the roster");
  }
  std::sort(rules.required.begin(), rules.required.end());
  rules.required.erase(std::unique(rules.required.begin(), rules.required.end()), rules.required.end());

  nlohmann::json keys = nlohmann::json::array();
  for (const auto& k : trust.keys()) {
    keys.push_back({{"node_id", k.node_id},
                    {"keyid", k.keyid},
                    {"not_before", optional_time(k.not_before)},
                    {"not_after", optional_time(k.not_after)},
                    {"revoked_at", optional_time(k.revoked_at)}});
  }
  nlohmann::json j = {{"threshold", rules.threshold},
                      {"match", match_mode_name(rules.match)},
                      {"on_conflict", conflict_mode_name(rules.on_conflict)},
                      {"max_age", rules.max_age ? nlohmann::json(*rules.max_age) : nlohmann::json(nullptr)},
                      {"required", rules.required},
                      {"nodes", keys}};
  // Only when set: policies written before the key keep their digest.
  if (rules.pinned_run_environment) j["run_environment"] = "pinned";
  Policy p;
  p.json_ = QR_TRY(::quorate::canonical_json(j, what));
  p.digest_ = sha256_digest(p.json_);
  p.rules_ = std::move(rules);
  p.trust_ = std::move(trust);
  return p;
}

}  // namespace quorate::quorum
