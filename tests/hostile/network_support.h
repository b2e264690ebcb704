// Shared by the tests/hostile/network_* tests: the verifier daemon in-process over the real quorum store and
// engine (envelope signatures faked: an "envelope" is a JSON claim), node daemons with a rebuilder that makes
// such claims, and bounded waits.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "quorate/core/sha256.h"
#include "quorate/node/daemon.h"
#include "quorate/quorum/quorum_judge.h"
#include "quorate/quorum/verifier_daemon.h"
#include "quorate/wire/socket.h"
#include "support/test_util.h"

namespace quorate::hostile {

namespace pb = wire::pb;
using SteadyClock = std::chrono::steady_clock;
constexpr int64_t kNow = 1'800'000'000;
inline const std::set<std::string> kRoster = {"a", "b", "c"};

inline std::string keyid(const std::string& node) { return sha256_hex("key:" + node); }
inline std::string image(const std::string& name) { return sha256_digest("image:" + name); }

// {"node", "commit", "image"}: what a node claims; verified as a signature check would, by node name.
inline std::string claim(const std::string& node, const std::string& commit, const std::string& img) {
  return nlohmann::json({{"node", node}, {"commit", commit}, {"image", img}}).dump();
}

inline Result<quorum::VerifiedEnvelope> fake_verify(const std::string& envelope) {
  auto j = nlohmann::json::parse(envelope, nullptr, false);
  if (j.is_discarded() || !j.contains("node")) return Status::bad_input("envelope is not a claim");
  std::string node = j["node"];
  if (!kRoster.count(node)) return Status::verification("unknown key " + keyid(node));
  quorum::VerifiedEnvelope v;
  v.vote.node_id = node;
  v.vote.keyid = keyid(node);
  v.vote.subject = {"file:///repo.git", j["commit"], "quorate.toml"};
  v.vote.image_digest = image(j["image"]);
  v.vote.config_digest = sha256_digest("config:" + j["image"].get<std::string>());
  v.vote.signed_at = kNow - 60;
  v.vote.envelope_digest = sha256_digest(envelope);
  v.started_on = kNow - 120;
  return v;
}

// The production judge over data_dir/store.db, k of {a, b, c}.
inline std::unique_ptr<quorum::QuorumJudge> open_judge(const std::filesystem::path& store_path, int64_t k = 2) {
  std::vector<quorum::TrustedKey> keys;
  for (const auto& n : kRoster) keys.push_back({n, keyid(n), std::nullopt, std::nullopt, std::nullopt});
  quorum::QuorumRules rules;
  rules.threshold = k;
  auto policy = quorum::Policy::create(rules, quorum::Trust::create(keys).value()).value();
  auto store = quorum::Store::open(store_path);
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  return std::make_unique<quorum::QuorumJudge>(std::move(store.value()), std::move(policy), fake_verify,
                                               [] { return kNow * 1000; });
}

inline pb::SubjectKey subject(const std::string& commit) {
  pb::SubjectKey k;
  k.set_repo("file:///repo.git");
  k.set_commit(commit);
  k.set_recipe_path("quorate.toml");
  return k;
}

// A daemon running in its own thread until halt() or destruction.
template <class Daemon>
struct Running {
  std::ostringstream log_text;
  wire::EventLog log{log_text, [] { return int64_t{0}; }, "test"};
  std::unique_ptr<Daemon> daemon;
  std::atomic<bool> stop{false};
  std::thread thread;
  void start() {
    thread = std::thread([this] { EXPECT_TRUE(daemon->run(stop).ok()); });
  }
  void halt() {
    if (!thread.joinable()) return;
    stop = true;
    thread.join();
  }
  ~Running() { halt(); }
};

struct TestVerifier : Running<quorum::VerifierDaemon> {
  TestVerifier(const std::filesystem::path& dir, std::vector<wire::FollowedNode> nodes,
               std::unique_ptr<quorum::Judge> judge = nullptr) {
    quorum::VerifierConfig c;
    c.data_dir = dir / "verifier";
    std::filesystem::create_directories(c.data_dir);
    c.transport.insecure = true;
    c.nodes = std::move(nodes);
    c.history_timeout_ms = 500;
    if (!judge) judge = open_judge(c.data_dir / "store.db");
    auto d = quorum::VerifierDaemon::open(c, std::move(judge), log, {});
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    daemon = std::move(*d);
    start();
  }
};

// Claims `image` for every build request, as node `id`.
class ClaimingRebuilder : public node::Rebuilder {
 public:
  ClaimingRebuilder(std::string id, std::string img) : id_(std::move(id)), image_(std::move(img)) {}
  Result<node::RebuildOutput> rebuild(const pb::BuildRequest& r, const std::atomic<bool>&) override {
    return node::RebuildOutput{claim(id_, r.commit(), image_), image(image_)};
  }

 private:
  std::string id_, image_;
};

// Polls `pred` every 20 ms until it holds or `timeout` passes.
inline bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

inline wire::ClientSecurity insecure_client() {
  wire::ClientSecurity s;
  s.transport = wire::Transport::kInsecure;
  return s;
}

}  // namespace quorate::hostile
