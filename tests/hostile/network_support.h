// Shared by the tests/hostile/network_* tests: the verifier daemon in-process over the real quorum store,
// engine and verification (real signed attestations by a roster of three), node daemons with a rebuilder that
// signs such attestations, and bounded waits.
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
#include "quorate/quorumd/quorum_judge.h"
#include "quorate/quorumd/verifier_daemon.h"
#include "quorate/wire/request.h"
#include "quorate/wire/socket.h"
#include "quorum/signed.h"
#include "support/test_util.h"

namespace quorate::hostile {

namespace pb = wire::pb;
using SteadyClock = std::chrono::steady_clock;
constexpr int64_t kNow = quorum::testing::kSigned + 3600;

// The roster {a, b, c}: real Ed25519 keys, made once per test binary.
inline const std::vector<quorum::testing::Node>& roster_nodes() {
  static const std::vector<quorum::testing::Node> nodes = quorum::testing::make_nodes({"a", "b", "c"});
  return nodes;
}
inline const quorum::testing::Node& roster_node(const std::string& id) {
  for (const auto& n : roster_nodes()) {
    if (n.id == id) return n;
  }
  static const quorum::testing::Node stranger = quorum::testing::make_node("stranger");
  return stranger;
}

inline std::string image(const std::string& name) { return quorum::testing::image_of(name); }

// A real signed attestation by `node` that commit `commit` (a word) rebuilt to image `img` (a word).
inline std::string claim(const std::string& node, const std::string& commit, const std::string& img) {
  return quorum::testing::attestation(roster_node(node), commit, img);
}

// The production judge over `store_path`, k of {a, b, c}, with a policy file next to the store.
inline std::unique_ptr<quorum::QuorumJudge> open_judge(const std::filesystem::path& store_path, int64_t k = 2) {
  std::filesystem::create_directories(store_path.parent_path());
  auto policy =
      quorum::testing::write_policy(store_path.parent_path(), "threshold = " + std::to_string(k), roster_nodes());
  auto verifier = quorum::Verifier::load(policy);
  EXPECT_TRUE(verifier.ok()) << verifier.status().to_string();
  auto store = quorum::Store::open(store_path);
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  return std::make_unique<quorum::QuorumJudge>(
      std::move(store.value()), std::make_shared<const quorum::Verifier>(std::move(verifier).value()),
      [] { return kNow * 1000; }, 2);
}

inline pb::SubjectKey subject(const std::string& commit) {
  pb::SubjectKey k;
  k.set_repo(quorum::testing::kRepo);
  k.set_commit(quorum::testing::commit_of(commit));
  k.set_recipe_path("quorate.toml");
  k.set_source_date_epoch(1700000000);
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
  Result<node::RebuildOutput> rebuild(const wire::RebuildRequest& r, const std::atomic<bool>&) override {
    return node::RebuildOutput{claim(id_, r.commit, image_), image(image_)};
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
