// The quorum engine: attribute votes to voters, void what does not count, tally, and apply the conflict rule.
#include "quorate/quorum/decision.h"
#include "quorate/core/display.h"

#include "quorate/core/build_args.h"
#include "quorate/core/json.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "quorate/core/time.h"

namespace quorate::quorum {
namespace {

// Clocks of nodes and verifier disagree a little; a vote signed further in the future than this is void,
// since a future date would otherwise dodge max_age forever.
constexpr int64_t kClockSkew = 300;

struct Attributed {
  const Vote* vote;
  std::string voter;
};

struct Context {
  const Policy& policy;
  const SubjectKey& subject;
  int64_t now;
  Decision d;
  std::vector<Vote> votes;                                   // this subject's votes, sorted, exact duplicates removed
  std::vector<Attributed> attributed;                        // signed by a key valid for the voter at signed_at
  std::map<std::string, std::vector<const Vote*>> eligible;  // voter -> counted candidates (one digest each)
  std::map<std::string, std::vector<Ballot>> tally;          // digest -> one ballot per voter
};

const std::string& matched(const Policy& p, const Vote& v) {
  return p.rules().match == MatchMode::kImage ? v.image_digest : v.config_digest;
}

void add_void(Context& c, const Vote& v, std::string reason) {
  c.d.void_votes.push_back({v.node_id, v.keyid, v.image_digest, v.config_digest, v.envelope_digest, std::move(reason)});
}

void select_votes(Context& c, std::span<const Vote> votes) {
  for (const auto& v : votes) {
    if (v.subject == c.subject) c.votes.push_back(v);
  }
  std::sort(c.votes.begin(), c.votes.end());
  c.votes.erase(std::unique(c.votes.begin(), c.votes.end()), c.votes.end());
}

// A vote belongs to a voter only if its key is in the roster, listed under the node id the statement claims
// (Roster::verify's rule), and valid at the time it was signed (attest::key_validity, the one rule).
void attribute_votes(Context& c) {
  const Trust& trust = c.policy.trust();
  for (const auto& v : c.votes) {
    auto voter = trust.voter_of_key(v.keyid);
    if (!voter) {
      add_void(c, v, "unknown key");
      continue;
    }
    if (!trust.lists(v.node_id, v.keyid)) {
      add_void(c, v, "key belongs to node '" + *voter + "', not to the claimed node '" + v.node_id + "'");
      continue;
    }
    KeyValidity validity = trust.validity(v.keyid, v.signed_at);
    if (validity != KeyValidity::kValid) {
      add_void(c, v, std::string(key_validity_name(validity)) + " at " + format_rfc3339(v.signed_at));
      continue;
    }
    c.attributed.push_back({&v, *voter});
  }
}

// A voter that signed two different digests for this subject key is equivocating: all its votes are void.
void find_equivocators(Context& c) {
  std::map<std::string, std::set<std::string>> digests;
  for (const auto& a : c.attributed) digests[a.voter].insert(matched(c.policy, *a.vote));
  for (const auto& [voter, set] : digests) {
    if (set.size() > 1) c.d.equivocators.push_back(voter);
  }
  for (const auto& a : c.attributed) {
    const Vote& v = *a.vote;
    if (std::binary_search(c.d.equivocators.begin(), c.d.equivocators.end(), a.voter)) {
      std::string reason = "equivocation: '" + a.voter + "' signed";
      for (const auto& dg : digests[a.voter]) reason += " " + dg;
      add_void(c, v, reason);
      continue;
    }
    const auto& max_age = c.policy.rules().max_age;
    if (max_age && c.now - v.signed_at > *max_age) {
      add_void(
          c, v,
          "too old: signed " + format_rfc3339(v.signed_at) + ", more than max_age before " + format_rfc3339(c.now));
      continue;
    }
    if (c.policy.rules().pinned_run_environment && v.run_environment == "host") {
      add_void(c, v,
               "run steps executed on the node's host toolchain, not in a pinned builder image "
               "(policy: run_environment = \"pinned\")");
      continue;
    }
    if (v.signed_at > c.now + kClockSkew) {
      add_void(c, v, "signed in the future: " + format_rfc3339(v.signed_at));
      continue;
    }
    c.eligible[a.voter].push_back(&v);
  }
}

// One ballot per voter: its newest eligible vote (ties: the smallest envelope digest). Other eligible votes of
// the same voter are duplicates; they are reported as void so that nothing vanishes silently.
void cast_ballots(Context& c) {
  for (auto& [voter, votes] : c.eligible) {
    std::sort(votes.begin(), votes.end(), [](const Vote* a, const Vote* b) {
      if (a->signed_at != b->signed_at) return a->signed_at > b->signed_at;
      return *a < *b;
    });
    const Vote& v = *votes.front();
    c.tally[matched(c.policy, v)].push_back(
        {voter, matched(c.policy, v), v.image_digest, v.config_digest, v.keyid, v.signed_at, v.envelope_digest});
    for (size_t i = 1; i < votes.size(); ++i) add_void(c, *votes[i], "duplicate: '" + voter + "' already voted");
  }
}

std::string names(const std::vector<Ballot>& ballots) {
  std::string out;
  for (const auto& b : ballots) out += (out.empty() ? "" : ", ") + b.node;
  return out;
}

std::string sides(const std::vector<std::pair<std::string, std::vector<Ballot>>>& ranked) {
  std::string out;
  for (const auto& [digest, ballots] : ranked) {
    out += (out.empty() ? "" : " vs ") + digest + " (" + std::to_string(ballots.size()) + ": " + names(ballots) + ")";
  }
  return out;
}

void judge(Context& c) {
  Decision& d = c.d;
  const QuorumRules& rules = c.policy.rules();
  const auto k = static_cast<size_t>(rules.threshold);
  // Most votes first, then the smallest digest: a fixed order, whatever the arrival order.
  std::vector<std::pair<std::string, std::vector<Ballot>>> ranked(c.tally.begin(), c.tally.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
  if (ranked.empty()) {
    d.reason = "no valid votes (" + std::to_string(d.void_votes.size()) + " void); threshold is " + std::to_string(k);
    return;
  }
  d.agreeing = ranked.front().second;
  for (size_t i = 1; i < ranked.size(); ++i)
    d.dissenting.insert(d.dissenting.end(), ranked[i].second.begin(), ranked[i].second.end());
  size_t winners = std::count_if(ranked.begin(), ranked.end(), [&](const auto& r) { return r.second.size() >= k; });
  if (ranked.size() > 1 && (rules.on_conflict == ConflictMode::kReject || winners > 1)) {
    d.reason =
        std::string("conflict") +
        (rules.on_conflict == ConflictMode::kReject ? " (on_conflict = reject)"
                                                    : ": more than one digest has " + std::to_string(k) + " votes") +
        ": " + sides(ranked);
    return;
  }
  if (winners == 0) {
    d.reason = "only " + std::to_string(ranked.front().second.size()) + " of the required " + std::to_string(k) +
               " votes agree on " + ranked.front().first + " (" + names(ranked.front().second) + ")";
    return;
  }
  for (const auto& r : rules.required) {
    std::string voter = *c.policy.trust().voter_of_node(r);
    bool agreed = std::any_of(d.agreeing.begin(), d.agreeing.end(), [&](const Ballot& b) { return b.node == voter; });
    if (!agreed) {
      d.reason = "required node '" + r + "' is not among the nodes agreeing on " + ranked.front().first;
      return;
    }
  }
  d.accepted = true;
  d.digest = ranked.front().first;
  d.reason = std::to_string(d.agreeing.size()) + " of " + std::to_string(c.policy.trust().voters().size()) +
             " nodes agree on " + d.digest + " (threshold " + std::to_string(k) + ": " + names(d.agreeing) + ")";
  if (!d.dissenting.empty())
    d.reason += "; " + std::to_string(d.dissenting.size()) + " dissent (on_conflict = majority)";
}

void finish(Context& c) {
  Decision& d = c.d;
  std::set<std::string> images;
  for (const auto& b : d.agreeing) {
    for (const Vote* v : c.eligible[b.node]) images.insert(v->image_digest);
  }
  if (d.accepted) d.image_digests.assign(images.begin(), images.end());
  std::set<std::string> counted;
  for (const auto& [digest, ballots] : c.tally) {
    for (const auto& b : ballots) counted.insert(b.node);
  }
  for (const auto& v : c.policy.trust().voters()) {
    if (!counted.count(v) && !std::binary_search(d.equivocators.begin(), d.equivocators.end(), v))
      d.missing.push_back(v);
  }
  auto by_node = [](const Ballot& a, const Ballot& b) {
    return std::tie(a.digest, a.node) < std::tie(b.digest, b.node);
  };
  std::sort(d.agreeing.begin(), d.agreeing.end(), by_node);
  std::sort(d.dissenting.begin(), d.dissenting.end(), by_node);
  std::sort(d.void_votes.begin(), d.void_votes.end(), [](const VoidVote& a, const VoidVote& b) {
    return std::tie(a.envelope_digest, a.node_id, a.keyid, a.reason) <
           std::tie(b.envelope_digest, b.node_id, b.keyid, b.reason);
  });
}

nlohmann::json ballot_json(const Ballot& b) {
  return {{"node", b.node},
          {"digest", b.digest},
          {"image_digest", b.image_digest},
          {"config_digest", b.config_digest},
          {"keyid", b.keyid},
          {"signed_at", format_rfc3339(b.signed_at)},
          {"envelope_digest", b.envelope_digest}};
}

// The canonical JSON of a decision written directly (issue 17: through nlohmann it was most of the cost of a
// decision at 50 nodes). Byte for byte what canonical_json() writes for the same document (Decision::to_json's
// reference form below): members in byte order, no whitespace, strings escaped as nlohmann escapes them. Only
// for ASCII text: a string with any other byte takes the reference path, which checks it is UTF-8.
class FastJson {
 public:
  bool ascii(std::string_view s) const {
    for (unsigned char c : s) {
      if (c >= 0x80) return false;
    }
    return true;
  }
  void str(std::string_view s) {
    out.push_back('"');
    size_t plain = 0;  // start of the run of bytes written as they are
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out.append(s.substr(plain, i - plain));
      plain = i + 1;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default: {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        }
      }
    }
    out.append(s.substr(plain));
    out.push_back('"');
  }
  void key(std::string_view k) {
    str(k);
    out.push_back(':');
  }
  void strings(const std::vector<std::string>& v) {
    out.push_back('[');
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out.push_back(',');
      str(v[i]);
    }
    out.push_back(']');
  }
  void ballot(const Ballot& b) {
    out += "{";
    key("config_digest"), str(b.config_digest), out.push_back(',');
    key("digest"), str(b.digest), out.push_back(',');
    key("envelope_digest"), str(b.envelope_digest), out.push_back(',');
    key("image_digest"), str(b.image_digest), out.push_back(',');
    key("keyid"), str(b.keyid), out.push_back(',');
    key("node"), str(b.node), out.push_back(',');
    key("signed_at"), str(format_rfc3339(b.signed_at));
    out += "}";
  }
  void ballots(const std::vector<Ballot>& v) {
    out.push_back('[');
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out.push_back(',');
      ballot(v[i]);
    }
    out.push_back(']');
  }
  std::string out;
};

bool all_ascii(const Decision& d) {
  FastJson f;
  auto ok = [&](const std::string& s) { return f.ascii(s); };
  auto all = [&](const std::vector<std::string>& v) { return std::all_of(v.begin(), v.end(), ok); };
  auto ballots = [&](const std::vector<Ballot>& v) {
    return std::all_of(v.begin(), v.end(), [&](const Ballot& b) {
      return ok(b.node) && ok(b.digest) && ok(b.image_digest) && ok(b.config_digest) && ok(b.keyid) &&
             ok(b.envelope_digest);
    });
  };
  return ok(d.subject.source_uri) && ok(d.subject.commit) && ok(d.subject.recipe_path) && ok(d.subject.build_args) &&
         ok(d.digest) && all(d.image_digests) && ballots(d.agreeing) && ballots(d.dissenting) &&
         std::all_of(d.void_votes.begin(), d.void_votes.end(),
                     [&](const VoidVote& v) {
                       return ok(v.node_id) && ok(v.keyid) && ok(v.image_digest) && ok(v.config_digest) &&
                              ok(v.envelope_digest) && ok(v.reason);
                     }) &&
         all(d.missing) && all(d.equivocators) && ok(d.reason) && ok(d.policy_digest);
}

// Decision::to_json as it was first written: a nlohmann document written by canonical_json(). The definition of
// the bytes; the fast path must equal it (tests/quorum/decision_test.cc pins both).
Result<std::string> reference_json(const Decision& d) {
  const SubjectKey& subject = d.subject;
  nlohmann::json j;
  j["subject"] = {{"source_uri", subject.source_uri},
                  {"commit", subject.commit},
                  {"recipe_path", subject.recipe_path},
                  {"source_date_epoch", subject.source_date_epoch}};
  // Only when there are some: records of subjects without build args keep their bytes. An object, written
  // canonically it is the key's text.
  if (!subject.build_args.empty()) j["subject"]["build_args"] = build_args_json(subject.build_args);
  j["accepted"] = d.accepted;
  j["digest"] = d.digest;
  j["image_digests"] = d.image_digests;
  j["agreeing"] = nlohmann::json::array();
  for (const auto& b : d.agreeing) j["agreeing"].push_back(ballot_json(b));
  j["dissenting"] = nlohmann::json::array();
  for (const auto& b : d.dissenting) j["dissenting"].push_back(ballot_json(b));
  j["void_votes"] = nlohmann::json::array();
  for (const auto& v : d.void_votes) {
    j["void_votes"].push_back({{"node_id", v.node_id},
                               {"keyid", v.keyid},
                               {"image_digest", v.image_digest},
                               {"config_digest", v.config_digest},
                               {"envelope_digest", v.envelope_digest},
                               {"reason", v.reason}});
  }
  j["missing"] = d.missing;
  j["equivocators"] = d.equivocators;
  j["reason"] = d.reason;
  j["policy_digest"] = d.policy_digest;
  j["time"] = format_rfc3339(d.time);
  return canonical_json(j, "decision");
}

}  // namespace

Result<std::string> decision_reference_json(const Decision& d) { return reference_json(d); }

std::string SubjectKey::to_string() const {
  return source_uri + "@" + commit + ":" + recipe_path + "@" + std::to_string(source_date_epoch) +
         describe_build_args(build_args);
}

int64_t decided_until(const Policy& policy, std::span<const Vote> votes, int64_t now) {
  // The two places decide() reads `now` (void_votes): max_age and the clock skew.
  int64_t until = std::numeric_limits<int64_t>::max();
  const auto& max_age = policy.rules().max_age;
  for (const auto& v : votes) {
    if (max_age && v.signed_at + *max_age + 1 > now) until = std::min(until, v.signed_at + *max_age + 1);
    if (v.signed_at - kClockSkew > now) until = std::min(until, v.signed_at - kClockSkew);
  }
  return until;
}

Decision decide(const Policy& policy, const SubjectKey& subject, std::span<const Vote> votes, int64_t now) {
  Context c{policy, subject, now, {}, {}, {}, {}, {}};
  c.d.subject = subject;
  c.d.policy_digest = policy.digest();
  c.d.time = now;
  select_votes(c, votes);
  attribute_votes(c);
  find_equivocators(c);
  cast_ballots(c);
  judge(c);
  finish(c);
  return std::move(c.d);
}

Result<std::string> Decision::to_json() const {
  if (!all_ascii(*this)) return reference_json(*this);
  std::string args;
  if (!subject.build_args.empty()) {
    auto text = canonical_json(build_args_json(subject.build_args), "decision");
    if (!text.ok()) return reference_json(*this);
    args = std::move(text).value();
  }
  FastJson f;
  f.out.reserve(1024 + 512 * (agreeing.size() + dissenting.size() + void_votes.size()));
  std::string& o = f.out;
  o += "{";
  f.key("accepted"), o += accepted ? "true" : "false", o += ',';
  f.key("agreeing"), f.ballots(agreeing), o += ',';
  f.key("digest"), f.str(digest), o += ',';
  f.key("dissenting"), f.ballots(dissenting), o += ',';
  f.key("equivocators"), f.strings(equivocators), o += ',';
  f.key("image_digests"), f.strings(image_digests), o += ',';
  f.key("missing"), f.strings(missing), o += ',';
  f.key("policy_digest"), f.str(policy_digest), o += ',';
  f.key("reason"), f.str(reason), o += ',';
  f.key("subject"), o += '{';
  if (!args.empty()) f.key("build_args"), o += args, o += ',';
  f.key("commit"), f.str(subject.commit), o += ',';
  f.key("recipe_path"), f.str(subject.recipe_path), o += ',';
  f.key("source_date_epoch"), o += std::to_string(subject.source_date_epoch), o += ',';
  f.key("source_uri"), f.str(subject.source_uri), o += "},";
  f.key("time"), f.str(format_rfc3339(time)), o += ',';
  f.key("void_votes"), o += '[';
  for (size_t i = 0; i < void_votes.size(); ++i) {
    const VoidVote& v = void_votes[i];
    if (i) o += ',';
    o += '{';
    f.key("config_digest"), f.str(v.config_digest), o += ',';
    f.key("envelope_digest"), f.str(v.envelope_digest), o += ',';
    f.key("image_digest"), f.str(v.image_digest), o += ',';
    f.key("keyid"), f.str(v.keyid), o += ',';
    f.key("node_id"), f.str(v.node_id), o += ',';
    f.key("reason"), f.str(v.reason), o += '}';
  }
  o += "]}";
  return std::move(f.out);
}

std::string Decision::to_text() const {
  // The subject, digests and reasons are what attestations said: each line masked (core/display.h).
  std::ostringstream out;
  const auto line = [&](const std::string& text) { out << mask_control(text) << "\n"; };
  line((accepted ? "ACCEPTED " : "REJECTED ") + subject.to_string());
  if (accepted) {
    line("  digest: " + digest);
    for (const auto& i : image_digests) line("  image: " + i);
  }
  line("  reason: " + reason);
  for (const auto& b : agreeing) line("  " + std::string(accepted ? "agree" : "vote") + ": " + b.node + " " + b.digest);
  for (const auto& b : dissenting) line("  dissent: " + b.node + " " + b.digest);
  for (const auto& e : equivocators) line("  equivocator: " + e);
  for (const auto& v : void_votes) line("  void: " + v.node_id + " " + v.envelope_digest + ": " + v.reason);
  for (const auto& m : missing) line("  missing: " + m);
  line("  policy: " + policy_digest);
  return out.str();
}

}  // namespace quorate::quorum
