// The gate's verdict on a review: each image must be pinned by digest and accepted under the namespace's
// policy, decided by quorum::answer (the rule `quorate verify` and the verifier daemon use) either from the
// votes of a store opened read-only next to the verifier daemon writing it, or from the decisions the verifier
// daemon answers over its query socket, summarised by quorum::answer_from_decisions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/gate/admission.h"
#include "quorate/wire/security.h"

namespace quorate::gate {

// Per-namespace rules from gate.toml (docs/gate.md): a namespace excluded from the gate, or judged under
// another (stricter) policy file than --policy.
struct NamespaceRule {
  std::string name;
  bool exclude = false;
  std::filesystem::path policy;  // empty: the default policy
};
struct GateConfig {
  std::vector<NamespaceRule> namespaces;
};
// bad_input naming file:line for unknown keys, a rule without a name, a name given twice, or a rule that both
// excludes and names a policy; relative policy paths are resolved against the file's directory.
Result<GateConfig> load_gate_config(const std::filesystem::path& path);

// How long the gate waits for the verifier's answer to one query (docs/gate.md); the API server's own
// webhook timeout (timeoutSeconds, 10 s by default) must leave room for it.
inline constexpr int kDefaultQuorumTimeoutMs = 2000;

// The verifier daemon's query socket, asked instead of reading the store.
struct QuorumSource {
  std::string endpoint;           // tcp://HOST:PORT (quorum.toml's [network] query)
  wire::ClientSecurity security;  // CURVE: this gate's key pair and the verifier's public key
  int timeout_ms = kDefaultQuorumTimeoutMs;
};

struct DeciderOptions {
  std::filesystem::path policy;  // the default policy file (docs/policy.md)
  std::filesystem::path store;   // the verifier daemon's store.db; empty when `quorum` is set
  GateConfig config;
  std::function<int64_t()> clock_s;  // the wall clock in Unix seconds: the time decisions are made at
  // Set: ask the verifier daemon (exactly one of `store` and `quorum`). Its decisions count only when made
  // under the namespace's policy (their policy digest is that of the policy file the gate loaded).
  std::optional<QuorumSource> quorum;
};

struct ImageVerdict {
  std::string where;
  std::string image;
  bool allowed = false;
  std::string why;  // in words: the accepting subject, or why not
};

struct Verdict {
  bool allowed = false;
  std::string message;               // on denial: every offending image and why, "; "-separated
  std::vector<ImageVerdict> images;  // in the review's order
  bool excluded = false;             // the namespace is excluded by gate.toml
};

// Thread-safe: reviews are decided one at a time (one store connection, one cache of verified envelopes).
class Decider {
 public:
  // Loads the policies and opens the store read-only (or connects to the verifier, which need not be up yet);
  // usage when neither or both of store and quorum are given, or when quorum is given and a namespace rule names
  // a policy other than the default one (the verifier decides under its own only); not_found, bad_input or io
  // when one fails.
  static Result<std::unique_ptr<Decider>> open(DeciderOptions options);
  ~Decider();

  // Never fails: an error (the store unreadable, replaced by something that is not a store, a digest the
  // engine refuses; the verifier silent for timeout_ms, answering garbage or under another policy) denies the
  // images concerned with a message saying so. The store is reopened when the file at its path is replaced.
  // After the verifier did not answer, the other images of the same review are denied without asking again,
  // so one review's own queries wait at most timeout_ms. Reviews are decided one at a time (the lock is held
  // across the queries), so a concurrent review also waits for those ahead of it: up to n x timeout_ms for
  // the n-th of n while the verifier is silent.
  Verdict decide(const Review& review);

 private:
  struct Impl;
  explicit Decider(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::gate
