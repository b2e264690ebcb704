// Log floods through a node's control socket: a client sends build requests the node refuses, each one
// different. Refusals for a full queue were logged at info (not rate-limited): one line per request, 3,000 lines
// for 3,000 requests. Refusals by the request checks were rate-limited by their "reason", which carried the
// request's own text (the repo): each request a new key, and once the limiter's 4,096 keys were taken every
// further line was written: 6,000 lines for 6,000 requests. Now a refusal is a warning keyed by its kind, and
// the limiter, when full, counts further keys under their event: a few dozen lines either way, every refusal
// still counted.
#include <iostream>

#include "e2e/process.h"
#include "network_support.h"

namespace quorate::hostile {
namespace {

// Node "a", its queue limit and repository list as given.
struct RefusingNode {
  node::NodeConfig config;
  Running<node::NodeDaemon> running;

  RefusingNode(const std::filesystem::path& dir, size_t max_queue, std::vector<std::string> repositories) {
    config.node_id = "a";
    config.data_dir = dir / "a";
    config.transport.insecure = true;
    config.publish_endpoint = "tcp://127.0.0.1:*";
    config.control_endpoint = "tcp://127.0.0.1:*";
    config.max_queue = max_queue;
    config.repositories = std::move(repositories);
    auto d = node::NodeDaemon::open(config, std::make_unique<ClaimingRebuilder>("a", "good"), running.log, {});
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    running.daemon = std::move(*d);
    running.start();
  }

  // Sends `count` build requests made by `make` over one connection, each once the one before was answered.
  void flood(int count, const std::function<pb::BuildRequest(int)>& make) {
    auto ctx = wire::Context::create().value();
    auto dealer = wire::Socket::client(*ctx, wire::SocketType::kDealer, insecure_client()).value();
    ASSERT_TRUE(dealer.connect(running.daemon->control_endpoint()).ok());
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(dealer.send({wire::encode_frame(wire::MessageType::kBuildRequest, make(i))}).ok());
      auto got = dealer.recv(10000);
      ASSERT_TRUE(got.ok() && got->has_value()) << "request " << i << " was not answered";
    }
  }

  size_t lines(const std::string& event) {
    std::istringstream in(running.log_text.str());
    size_t n = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"event\":\"" + event + "\"") != std::string::npos) ++n;
    }
    return n;
  }
};

pb::BuildRequest flood_request(int i, const std::string& repo) {
  pb::BuildRequest r;
  r.set_request_id("req-flood-" + std::to_string(i));
  r.set_repo(repo);
  r.set_commit("c" + std::to_string(i));
  return r;
}

TEST(NetworkHostile, RefusalsForAFullQueueAreNotALineEach) {
  testing::ScratchDir dir;
  RefusingNode node(dir.path(), /*max_queue=*/0, {});
  constexpr int kQueueFullRequests = 3000;
  node.flood(kQueueFullRequests, [](int i) { return flood_request(i, "/srv/git/app"); });
  EXPECT_EQ(node.running.daemon->counters().rejected, uint64_t{kQueueFullRequests});
  const size_t written = node.lines("request_rejected");
  std::cout << "queue full: " << written << " request_rejected lines for " << kQueueFullRequests << " requests\n";
  EXPECT_GE(written, 1u);
  EXPECT_LE(written, 2u * wire::EventLog::kWarnBurst);
}

TEST(NetworkHostile, RefusalsNamingADifferentRepositoryEachAreNotALineEach) {
  testing::ScratchDir dir;
  RefusingNode node(dir.path(), /*max_queue=*/16, {"/srv/git/"});
  constexpr int kRefusedRequests = 6000;
  node.flood(kRefusedRequests, [](int i) { return flood_request(i, "/elsewhere/repo-" + std::to_string(i)); });
  EXPECT_EQ(node.running.daemon->counters().rejected, uint64_t{kRefusedRequests});
  const size_t written = node.lines("request_rejected");
  std::cout << "repository refused: " << written << " request_rejected lines for " << kRefusedRequests << " requests\n";
  EXPECT_GE(written, 1u);
  EXPECT_LE(written, 2u * wire::EventLog::kWarnBurst);
  // The lines written say what was refused.
  EXPECT_NE(node.running.log_text.str().find("/elsewhere/repo-0 is not one this node builds"), std::string::npos);
}

}  // namespace
}  // namespace quorate::hostile
