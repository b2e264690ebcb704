// Slow readers at the request sockets: a client of a node's control socket sends history requests and never
// reads the answers. The node's ROUTER queued up to 100,000 answers per connection (the socket default), each
// up to the history limit (32 MiB): 400 requests for a history of 1 MiB held 400 MiB in the node for as long
// as the client stayed connected. A request socket now queues only a few answers per peer (the rest are
// dropped: an honest client has one request outstanding and asks again after its timeout), and honest
// clients are answered meanwhile.
#include <zmq.hpp>

#include <iostream>

#include "e2e/process.h"
#include "network_support.h"
#include "quorate/node/store.h"

namespace quorate::hostile {
namespace {

constexpr int kSlowRequests = 400;
constexpr int kSlowRows = 4;
constexpr size_t kSlowEnvelopeBytes = 256 * 1024;  // a history answer of about 1 MiB

// Node "a" whose store holds kSlowRows attestations of kSlowEnvelopeBytes (its history is not checked by anyone here).
struct BigHistoryNode {
  node::NodeConfig config;
  Running<node::NodeDaemon> running;

  explicit BigHistoryNode(const std::filesystem::path& dir) {
    config.node_id = "a";
    config.data_dir = dir / "a";
    config.transport.insecure = true;
    config.publish_endpoint = "tcp://127.0.0.1:*";
    config.control_endpoint = "tcp://127.0.0.1:*";
    std::filesystem::create_directories(config.data_dir);
    {
      auto store = node::NodeStore::open(config.data_dir / "node.db");
      EXPECT_TRUE(store.ok()) << store.status().to_string();
      for (int i = 0; i < kSlowRows; ++i) {
        EXPECT_TRUE(
            (*store)->append("req-" + std::to_string(i), image("good"), std::string(kSlowEnvelopeBytes, 'e'), 0).ok());
      }
    }
    auto d = node::NodeDaemon::open(config, std::make_unique<ClaimingRebuilder>("a", "good"), running.log, {});
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    running.daemon = std::move(*d);
    running.start();
  }
  const std::string& control() const { return running.daemon->control_endpoint(); }
};

std::string slow_history_request() {
  pb::HistoryRequest h;
  h.set_since_sequence(0);
  return wire::encode_frame(wire::MessageType::kHistoryRequest, h);
}

TEST(NetworkHostile, ASlowReaderOfHistoryIsNotQueuedWithoutBound) {
  testing::ScratchDir dir;
  BigHistoryNode node(dir.path());
  zmq::context_t zctx;
  // The slow reader: its own socket takes in at most one message, so the rest stay at the node.
  zmq::socket_t slow(zctx, zmq::socket_type::dealer);
  slow.set(zmq::sockopt::rcvhwm, 1);
  slow.set(zmq::sockopt::rcvbuf, 4096);
  slow.set(zmq::sockopt::linger, 0);
  slow.connect(node.control());
  const std::string request = slow_history_request();
  for (int i = 0; i < kSlowRequests; ++i) ASSERT_TRUE(slow.send(zmq::buffer(request), zmq::send_flags::none));
  // The node has made every answer (each carries kSlowRows attestations).
  ASSERT_TRUE(
      wait_for([&] { return node.running.daemon->counters().history_served >= uint64_t{kSlowRequests} * kSlowRows; },
               std::chrono::seconds(60)))
      << node.running.daemon->counters().history_served;

  // An honest client is answered meanwhile.
  {
    auto ctx = wire::Context::create().value();
    auto honest = wire::Socket::client(*ctx, wire::SocketType::kDealer, insecure_client()).value();
    ASSERT_TRUE(honest.connect(node.control()).ok());
    ASSERT_TRUE(honest.send({request}).ok());
    auto got = honest.recv(10000);
    ASSERT_TRUE(got.ok() && got->has_value()) << "no history answer for an honest client";
    pb::HistoryResponse resp;
    ASSERT_TRUE(wire::decode_message((**got)[0], wire::MessageType::kHistoryResponse, wire::Limits{}, resp).ok());
    EXPECT_EQ(resp.attestations_size(), kSlowRows);
  }

  // Now the slow reader reads: what it gets is what the node held for it.
  int answers = 0;
  for (;;) {
    zmq::pollitem_t item{slow.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(2000)) == 0) break;
    zmq::message_t m;
    if (!slow.recv(m, zmq::recv_flags::dontwait)) continue;
    ++answers;
  }
  std::cout << "slow reader: " << answers << " of " << kSlowRequests << " answers were held for it\n";
  // A few answers queued at the node and what the kernel's socket buffers hold (about 1 MiB each); before,
  // every one of the 400.
  EXPECT_LE(answers, 40);
  EXPECT_GE(answers, 1);
}

}  // namespace
}  // namespace quorate::hostile
