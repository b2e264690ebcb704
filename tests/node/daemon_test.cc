// NodeDaemon in-process with a fake rebuilder: queueing and its bound, durable gap-free sequences across
// restarts, history, garbage and oversized frames, abandoning a build on stop.
#include "quorate/node/daemon.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "quorate/node/store.h"
#include "quorate/wire/follower.h"
#include "quorate/wire/socket.h"
#include "support/test_util.h"

namespace quorate::node {
namespace {

namespace pb = wire::pb;
using wire::MessageType;
using Clock = std::chrono::steady_clock;

// Builds instantly, or blocks until released or cancelled.
class FakeRebuilder : public Rebuilder {
 public:
  explicit FakeRebuilder(std::shared_ptr<std::atomic<bool>> hold = nullptr) : hold_(std::move(hold)) {}
  Result<RebuildOutput> rebuild(const wire::RebuildRequest& r, const std::atomic<bool>& cancel) override {
    while (hold_ && *hold_ && !cancel) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (cancel) return Status::internal("cancelled");
    if (r.commit == "bad") return Status::bad_input("no such commit");
    if (r.commit == "warn") {
      return RebuildOutput{"envelope-for-" + r.request_id, "sha256:" + std::string(64, 'a'), {"tool x has no version"}};
    }
    return RebuildOutput{"envelope-for-" + r.request_id, "sha256:" + std::string(64, 'a')};
  }

 private:
  std::shared_ptr<std::atomic<bool>> hold_;
};

struct RunningNode {
  std::ostringstream log_text;
  wire::EventLog log{log_text, [] { return int64_t{0}; }, "node"};
  std::unique_ptr<NodeDaemon> daemon;
  std::atomic<bool> stop{false};
  std::thread thread;

  RunningNode(const NodeConfig& config, std::unique_ptr<Rebuilder> rebuilder) {
    auto d = NodeDaemon::open(config, std::move(rebuilder), log, {});
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    daemon = std::move(*d);
    thread = std::thread([this] { EXPECT_TRUE(daemon->run(stop).ok()); });
  }
  // Stops the daemon and waits for it: its log is complete after.
  void halt() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
  ~RunningNode() { halt(); }
};

testing::ScratchDir& scratch() {
  static testing::ScratchDir dir;
  return dir;
}

NodeConfig test_config(const std::string& name, size_t max_queue = 16) {
  NodeConfig c;
  c.node_id = "node-" + name;
  c.data_dir = scratch() / name;
  c.transport.insecure = true;
  c.max_queue = max_queue;
  c.heartbeat_interval_ms = 100;
  return c;
}

struct Client {
  std::unique_ptr<wire::Context> ctx = wire::Context::create().value();
  std::unique_ptr<wire::Socket> dealer;
  explicit Client(const std::string& endpoint) {
    wire::ClientSecurity s;
    s.transport = wire::Transport::kInsecure;
    dealer = std::make_unique<wire::Socket>(wire::Socket::client(*ctx, wire::SocketType::kDealer, s).value());
    EXPECT_TRUE(dealer->connect(endpoint).ok());
  }
  ~Client() { dealer.reset(); }

  template <class Reply>
  Reply call(MessageType type, const google::protobuf::MessageLite& msg, MessageType reply_type) {
    EXPECT_TRUE(dealer->send({wire::encode_frame(type, msg)}).ok());
    auto got = dealer->recv(5000);
    Reply out;
    EXPECT_TRUE(got.ok() && got->has_value()) << "no reply";
    if (got.ok() && got->has_value()) {
      EXPECT_TRUE(wire::decode_message((**got)[0], reply_type, wire::Limits{}, out).ok());
    }
    return out;
  }
  pb::JobStatus submit(const std::string& id, const std::string& commit = "c1") {
    pb::BuildRequest r;
    r.set_request_id(id);
    r.set_repo("file:///repo");
    r.set_commit(commit);
    return call<pb::JobStatus>(MessageType::kBuildRequest, r, MessageType::kJobStatus);
  }
  pb::JobStatus status(const std::string& id) {
    pb::JobStatusRequest r;
    r.set_request_id(id);
    return call<pb::JobStatus>(MessageType::kJobStatusRequest, r, MessageType::kJobStatus);
  }
  pb::HistoryResponse history(uint64_t since) {
    pb::HistoryRequest r;
    r.set_since_sequence(since);
    return call<pb::HistoryResponse>(MessageType::kHistoryRequest, r, MessageType::kHistoryResponse);
  }
  // Polls the job until it leaves QUEUED/RUNNING or 10 s pass.
  pb::JobStatus wait(const std::string& id) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    pb::JobStatus s;
    while (Clock::now() < deadline) {
      s = status(id);
      if (s.state() != pb::JobStatus::QUEUED && s.state() != pb::JobStatus::RUNNING) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return s;
  }
};

TEST(NodeDaemon, BuildsStoresThenPublishesInSequence) {
  auto config = test_config("pub");
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());

  std::ostringstream flog;
  wire::EventLog log(
      flog, [] { return int64_t{0}; }, "test");
  auto fctx = wire::Context::create();
  wire::TransportConfig insecure;
  insecure.insecure = true;
  auto follower = wire::Follower::open(
      **fctx, {{config.node_id, node.daemon->publish_endpoint(), node.daemon->control_endpoint(), ""}}, insecure, {},
      {}, log);
  ASSERT_TRUE(follower.ok()) << follower.status().to_string();

  EXPECT_EQ(client.submit("r1").state(), pb::JobStatus::QUEUED);
  EXPECT_EQ(client.wait("r1").state(), pb::JobStatus::SUCCEEDED);
  EXPECT_EQ(client.submit("r2").state(), pb::JobStatus::QUEUED);
  auto done = client.wait("r2");
  EXPECT_EQ(done.state(), pb::JobStatus::SUCCEEDED);
  EXPECT_EQ(done.sequence(), 2u);

  std::vector<pb::AttestationMessage> seen;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (seen.size() < 2 && Clock::now() < deadline) {
    auto got = (*follower)->poll(50);
    ASSERT_TRUE(got.ok());
    for (auto& m : *got) seen.push_back(m);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].sequence(), 1u);
  EXPECT_EQ(seen[1].sequence(), 2u);
  EXPECT_EQ(seen[1].envelope(), "envelope-for-r2");
  EXPECT_EQ(seen[1].node_id(), config.node_id);
  // A resubmission of a finished request is answered, not rebuilt.
  EXPECT_EQ(client.submit("r1").sequence(), 1u);
  follower->reset();
  fctx->reset();
}

TEST(NodeDaemon, QueueIsBoundedAndRejectsBeyondIt) {
  auto config = test_config("queue", /*max_queue=*/1);
  std::filesystem::remove_all(config.data_dir);
  auto hold = std::make_shared<std::atomic<bool>>(true);
  RunningNode node(config, std::make_unique<FakeRebuilder>(hold));
  Client client(node.daemon->control_endpoint());
  EXPECT_EQ(client.submit("running").state(), pb::JobStatus::QUEUED);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (client.status("running").state() != pb::JobStatus::RUNNING && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(client.submit("waiting").state(), pb::JobStatus::QUEUED);
  auto third = client.submit("too-many");
  EXPECT_EQ(third.state(), pb::JobStatus::REJECTED);
  EXPECT_NE(third.message().find("queue full"), std::string::npos);
  *hold = false;
  EXPECT_EQ(client.wait("waiting").state(), pb::JobStatus::SUCCEEDED);
  EXPECT_EQ(node.daemon->counters().rejected, 1u);
}

TEST(NodeDaemon, FailedBuildIsReportedAndNotStored) {
  auto config = test_config("fail");
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());
  client.submit("broken", "bad");
  auto s = client.wait("broken");
  EXPECT_EQ(s.state(), pb::JobStatus::FAILED);
  EXPECT_NE(s.message().find("no such commit"), std::string::npos);
  EXPECT_EQ(client.history(0).attestations_size(), 0);
}

// What the rebuilder warns about a build that succeeded (a tool without a version) reaches the operator: one
// build_warning line at warn level, naming the request.
TEST(NodeDaemon, BuildWarningsAreLoggedAtWarn) {
  auto config = test_config("warn");
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  {
    Client client(node.daemon->control_endpoint());
    client.submit("w1", "warn");
    EXPECT_EQ(client.wait("w1").state(), pb::JobStatus::SUCCEEDED);
  }
  node.halt();
  std::vector<nlohmann::json> warnings;
  std::istringstream lines(node.log_text.str());
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == "build_warning") warnings.push_back(j);
  }
  ASSERT_EQ(warnings.size(), 1u) << node.log_text.str();
  EXPECT_EQ(warnings[0]["level"], "warn");
  EXPECT_EQ(warnings[0]["request_id"], "w1");
  EXPECT_EQ(warnings[0]["warning"], "tool x has no version");
}

TEST(NodeDaemon, RestartResumesTheSequenceAndServesHistory) {
  auto config = test_config("restart");
  std::filesystem::remove_all(config.data_dir);
  {
    RunningNode node(config, std::make_unique<FakeRebuilder>());
    Client client(node.daemon->control_endpoint());
    client.submit("a");
    client.submit("b");
    EXPECT_EQ(client.wait("b").sequence(), 2u);
  }
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());
  EXPECT_EQ(client.status("a").sequence(), 1u) << "known from the store after a restart";
  client.submit("c");
  EXPECT_EQ(client.wait("c").sequence(), 3u);
  auto h = client.history(0);
  ASSERT_EQ(h.attestations_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.attestations(i).sequence(), static_cast<uint64_t>(i + 1));
  EXPECT_EQ(h.last_sequence(), 3u);
  EXPECT_FALSE(h.more());
  EXPECT_EQ(client.history(2).attestations_size(), 1);
}

TEST(NodeDaemon, HistoryIsBatchedWithMore) {
  auto config = test_config("batch");
  config.history_batch = 2;
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());
  for (const char* id : {"1", "2", "3"}) client.submit(id);
  client.wait("3");
  auto h = client.history(0);
  EXPECT_EQ(h.attestations_size(), 2);
  EXPECT_TRUE(h.more());
}

TEST(NodeDaemon, GarbageAndOversizedFramesAreDroppedAndCounted) {
  auto config = test_config("garbage");
  config.limits.max_control_bytes = 1024;
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());
  ASSERT_TRUE(client.dealer->send({"definitely not a frame"}).ok());
  ASSERT_TRUE(client.dealer->send({"a", "b", "c", "d"}).ok());
  pb::BuildRequest big;
  big.set_request_id("big");
  big.set_repo(std::string(5000, 'r'));
  big.set_commit("c");
  ASSERT_TRUE(client.dealer->send({wire::encode_frame(MessageType::kBuildRequest, big)}).ok());
  ASSERT_TRUE(client.dealer->send({wire::encode_frame(MessageType::kDecision, pb::Decision())}).ok());
  // Still serving, and nothing of the above was queued.
  EXPECT_EQ(client.submit("fine").state(), pb::JobStatus::QUEUED);
  EXPECT_EQ(client.status("big").state(), pb::JobStatus::UNKNOWN);
  EXPECT_EQ(node.daemon->counters().dropped, 4u);
  EXPECT_NE(node.log_text.str().find("\"reason\":\"oversized\""), std::string::npos);
}

TEST(NodeDaemon, InvalidRequestIsRejectedWithAReason) {
  auto config = test_config("invalid");
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());
  pb::BuildRequest r;
  r.set_request_id("x");
  auto s = client.call<pb::JobStatus>(MessageType::kBuildRequest, r, MessageType::kJobStatus);
  EXPECT_EQ(s.state(), pb::JobStatus::REJECTED);
  EXPECT_NE(s.message().find("repo"), std::string::npos);
}

// Issue 11, item 15: an image name with a newline and a NUL was built and attested.
TEST(NodeDaemon, ControlCharactersInAFieldAreRejectedNamingTheField) {
  auto config = test_config("control-chars");
  std::filesystem::remove_all(config.data_dir);
  RunningNode node(config, std::make_unique<FakeRebuilder>());
  Client client(node.daemon->control_endpoint());
  pb::BuildRequest r;
  r.set_request_id("x");
  r.set_repo("repo");
  r.set_commit("c");
  r.set_image_name(std::string("evil\nname\0", 11));
  auto s = client.call<pb::JobStatus>(MessageType::kBuildRequest, r, MessageType::kJobStatus);
  EXPECT_EQ(s.state(), pb::JobStatus::REJECTED);
  EXPECT_NE(s.message().find("image_name holds a control character"), std::string::npos) << s.message();
  r.set_image_name("fine");
  r.set_source_date_epoch(-1);
  s = client.call<pb::JobStatus>(MessageType::kBuildRequest, r, MessageType::kJobStatus);
  EXPECT_EQ(s.state(), pb::JobStatus::REJECTED);
  EXPECT_NE(s.message().find("source_date_epoch"), std::string::npos) << s.message();
}

TEST(NodeDaemon, StopAbandonsTheRunningBuildAndStoresNothing) {
  auto config = test_config("stop");
  std::filesystem::remove_all(config.data_dir);
  auto hold = std::make_shared<std::atomic<bool>>(true);
  {
    RunningNode node(config, std::make_unique<FakeRebuilder>(hold));
    Client client(node.daemon->control_endpoint());
    client.submit("long");
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (client.status("long").state() != pb::JobStatus::RUNNING && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }  // stop + join: must return although the build never finishes
  auto store = NodeStore::open(config.data_dir / "node.db");
  EXPECT_EQ(*(*store)->last_sequence(), 0u);
}

}  // namespace
}  // namespace quorate::node
