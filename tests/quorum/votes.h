// Test helpers for the quorum engine: a roster of fake keys, votes, and a deterministic shuffle.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "quorate/core/sha256.h"
#include "quorate/quorum/decision.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/trust.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum::testing {

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15

inline std::string keyid(const std::string& name) { return sha256_hex("key:" + name); }
inline std::string digest(const std::string& name) { return sha256_digest("image:" + name); }
inline std::string config(const std::string& name) { return sha256_digest("config:" + name); }

inline SubjectKey subject(const std::string& commit = "c0ffee") {
  return {"https://git.example/app.git", commit, "recipe.toml"};
}

// Nodes named by `names`, each with its own key "key:<name>".
inline std::vector<TrustedKey> roster(const std::vector<std::string>& names) {
  std::vector<TrustedKey> keys;
  for (const auto& n : names) keys.push_back({n, keyid(n), std::nullopt, std::nullopt, std::nullopt});
  return keys;
}

inline Policy policy(std::vector<TrustedKey> keys, QuorumRules rules) {
  auto trust = Trust::create(std::move(keys));
  EXPECT_TRUE(trust.ok()) << trust.status().to_string();
  auto p = Policy::create(std::move(rules), std::move(trust.value()));
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return std::move(p.value());
}

inline QuorumRules rules(int64_t k, ConflictMode conflict = ConflictMode::kReject,
                         MatchMode match = MatchMode::kImage) {
  QuorumRules r;
  r.threshold = k;
  r.on_conflict = conflict;
  r.match = match;
  return r;
}

// A vote by `node` with its own key for image `image` (config digest derived from `content`, default = image).
inline Vote vote(const std::string& node, const std::string& image, int64_t signed_at = kNow - 3600,
                 const std::string& content = "", const SubjectKey& key = subject(), const std::string& key_of = "") {
  Vote v;
  v.node_id = node;
  v.keyid = keyid(key_of.empty() ? node : key_of);
  v.subject = key;
  v.image_digest = digest(image);
  v.config_digest = config(content.empty() ? image : content);
  v.signed_at = signed_at;
  v.envelope_digest = sha256_digest(node + "|" + (key_of.empty() ? node : key_of) + "|" + image + "|" + content + "|" +
                                    std::to_string(signed_at) + "|" + key.to_string());
  return v;
}

// splitmix64: the same sequence on every platform and standard library (std::shuffle's is unspecified).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_;
};

// Fisher-Yates with our own generator.
template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

inline std::vector<std::string> names_of(const std::vector<Ballot>& ballots) {
  std::vector<std::string> out;
  for (const auto& b : ballots) out.push_back(b.node);
  return out;
}

}  // namespace quorate::quorum::testing
