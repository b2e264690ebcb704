// ZeroMQ sockets on 127.0.0.1 with random ports: PUB/SUB, ROUTER/DEALER, CURVE allow and deny, timeouts.
#include "quorate/wire/socket.h"

#include <gtest/gtest.h>

#include <chrono>

#include "quorate/wire/frame.h"

namespace quorate::wire {
namespace {

using Clock = std::chrono::steady_clock;

ServerSecurity insecure_server() {
  ServerSecurity s;
  s.transport = Transport::kInsecure;
  return s;
}
ClientSecurity insecure_client() {
  ClientSecurity c;
  c.transport = Transport::kInsecure;
  return c;
}

// Publishes `frames` until `sub` receives a message or `limit` passes (PUB/SUB joins are asynchronous).
std::optional<Frames> publish_until_received(Socket& pub, Socket& sub, const Frames& frames,
                                             std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    EXPECT_TRUE(pub.send(frames).ok());
    auto got = sub.recv(50);
    EXPECT_TRUE(got.ok());
    if (got.ok() && got->has_value()) return **got;
  }
  return std::nullopt;
}

TEST(Socket, PubSubDeliversTopicPrefixedFrames) {
  auto ctx = Context::create();
  ASSERT_TRUE(ctx.ok());
  auto pub = Socket::server(**ctx, SocketType::kPub, insecure_server());
  ASSERT_TRUE(pub.ok());
  auto endpoint = pub->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().to_string();
  EXPECT_NE(endpoint->find("127.0.0.1:"), std::string::npos);
  auto sub = Socket::client(**ctx, SocketType::kSub, insecure_client());
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(sub->connect(*endpoint).ok());
  ASSERT_TRUE(sub->subscribe(std::string(kAttestationTopicPrefix)).ok());

  pb::AttestationMessage m;
  m.set_node_id("n1");
  m.set_sequence(1);
  auto got = publish_until_received(*pub, *sub, {attestation_topic("n1"), encode_frame(MessageType::kAttestation, m)});
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0], "att.n1");
  pb::AttestationMessage out;
  ASSERT_TRUE(decode_message((*got)[1], MessageType::kAttestation, Limits{}, out).ok());
  EXPECT_EQ(out.sequence(), 1u);
}

TEST(Socket, SubscriberFiltersByTopicPrefix) {
  auto ctx = Context::create();
  auto pub = Socket::server(**ctx, SocketType::kPub, insecure_server());
  auto endpoint = pub->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto sub = Socket::client(**ctx, SocketType::kSub, insecure_client());
  ASSERT_TRUE(sub->connect(*endpoint).ok());
  ASSERT_TRUE(sub->subscribe("hb.").ok());
  auto got = publish_until_received(*pub, *sub, {"hb.n1", "x"});
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(pub->send({"att.n1", "y"}).ok());
  auto none = sub->recv(200);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(Socket, RouterDealerRequestReply) {
  auto ctx = Context::create();
  auto router = Socket::server(**ctx, SocketType::kRouter, insecure_server());
  auto endpoint = router->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto dealer = Socket::client(**ctx, SocketType::kDealer, insecure_client());
  ASSERT_TRUE(dealer->connect(*endpoint).ok());

  pb::HistoryRequest req;
  req.set_since_sequence(5);
  ASSERT_TRUE(dealer->send({encode_frame(MessageType::kHistoryRequest, req)}).ok());
  auto in = router->recv(5000);
  ASSERT_TRUE(in.ok() && in->has_value());
  ASSERT_EQ((*in)->size(), 2u) << "identity + body";
  pb::HistoryRequest got;
  ASSERT_TRUE(decode_message((**in)[1], MessageType::kHistoryRequest, Limits{}, got).ok());
  EXPECT_EQ(got.since_sequence(), 5u);

  pb::HistoryResponse resp;
  resp.set_last_sequence(5);
  ASSERT_TRUE(router->send({(**in)[0], encode_frame(MessageType::kHistoryResponse, resp)}).ok());
  auto back = dealer->recv(5000);
  ASSERT_TRUE(back.ok() && back->has_value());
  pb::HistoryResponse out;
  ASSERT_TRUE(decode_message((**back)[0], MessageType::kHistoryResponse, Limits{}, out).ok());
  EXPECT_EQ(out.last_sequence(), 5u);
}

TEST(Socket, RecvTimesOutWithNothing) {
  auto ctx = Context::create();
  auto router = Socket::server(**ctx, SocketType::kRouter, insecure_server());
  ASSERT_TRUE(router->bind("tcp://127.0.0.1:*").ok());
  auto start = Clock::now();
  auto got = router->recv(100);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(90));
}

TEST(Socket, TooManyFramesIsGarbageAndTheNextMessageStillArrives) {
  auto ctx = Context::create();
  auto router = Socket::server(**ctx, SocketType::kRouter, insecure_server());
  auto endpoint = router->bind("tcp://127.0.0.1:*");
  auto dealer = Socket::client(**ctx, SocketType::kDealer, insecure_client());
  ASSERT_TRUE(dealer->connect(*endpoint).ok());
  ASSERT_TRUE(dealer->send(Frames(20, "x")).ok());
  ASSERT_TRUE(dealer->send({"ok"}).ok());
  auto first = router->recv(5000);
  EXPECT_TRUE(first.status().is_bad_input());
  auto second = router->recv(5000);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((**second)[1], "ok");
}

// A plain-TCP connect to "localhost" reaches the loopback address it was judged by, a name spelled like a
// loopback address is refused before any connection, and disconnect takes the endpoint as it was given.
TEST(Socket, InsecureConnectsByNameOnlyToLoopback) {
  auto ctx = Context::create();
  auto router = Socket::server(**ctx, SocketType::kRouter, insecure_server());
  auto endpoint = router->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  std::string port = endpoint->substr(endpoint->rfind(':') + 1);
  auto dealer = Socket::client(**ctx, SocketType::kDealer, insecure_client());
  EXPECT_EQ(dealer->connect("tcp://127.attacker.example:" + port).code(), Code::kUsage);
  ASSERT_TRUE(dealer->connect("tcp://localhost:" + port).ok());
  ASSERT_TRUE(dealer->send({"hello"}).ok());
  auto in = router->recv(5000);
  ASSERT_TRUE(in.ok() && in->has_value());
  EXPECT_EQ((**in)[1], "hello");
  EXPECT_TRUE(dealer->disconnect("tcp://localhost:" + port).ok());
}

TEST(Socket, InsecureBindOnAllInterfacesIsRefused) {
  auto ctx = Context::create();
  auto pub = Socket::server(**ctx, SocketType::kPub, insecure_server());
  auto bound = pub->bind("tcp://0.0.0.0:*");
  EXPECT_EQ(bound.status().code(), Code::kUsage);
}

TEST(Socket, BindErrorsAreStatusNotExceptions) {
  auto ctx = Context::create();
  auto a = Socket::server(**ctx, SocketType::kPub, insecure_server());
  auto endpoint = a->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto b = Socket::server(**ctx, SocketType::kPub, insecure_server());
  auto again = b->bind(*endpoint);
  EXPECT_EQ(again.status().code(), Code::kIo) << "address in use";
}

struct CurveSetup {
  CurveKeyPair server = *generate_curve_keypair();
  CurveKeyPair good = *generate_curve_keypair();
  CurveKeyPair bad = *generate_curve_keypair();
  ServerSecurity server_security() const {
    ServerSecurity s;
    s.server_keys = server;
    s.allowed_clients = {good.public_z85};
    return s;
  }
  ClientSecurity client_security(const CurveKeyPair& keys) const {
    ClientSecurity c;
    c.client_keys = keys;
    c.server_public = server.public_z85;
    return c;
  }
};

TEST(SocketCurve, AllowedClientSubscribesAndReceives) {
  CurveSetup keys;
  auto ctx = Context::create();
  auto pub = Socket::server(**ctx, SocketType::kPub, keys.server_security());
  ASSERT_TRUE(pub.ok()) << pub.status().to_string();
  auto endpoint = pub->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto client_ctx = Context::create();
  auto sub = Socket::client(**client_ctx, SocketType::kSub, keys.client_security(keys.good));
  ASSERT_TRUE(sub.ok()) << sub.status().to_string();
  ASSERT_TRUE(sub->connect(*endpoint).ok());
  ASSERT_TRUE(sub->subscribe("").ok());
  auto got = publish_until_received(*pub, *sub, {"dec.x", "decision"});
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)[1], "decision");
  EXPECT_GE((*ctx)->zap_allowed(), 1u);
  EXPECT_EQ((*ctx)->zap_denied(), 0u);
}

TEST(SocketCurve, ClientKeyNotInAllowListCannotSubscribe) {
  CurveSetup keys;
  auto ctx = Context::create();
  auto pub = Socket::server(**ctx, SocketType::kPub, keys.server_security());
  auto endpoint = pub->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto client_ctx = Context::create();
  auto sub = Socket::client(**client_ctx, SocketType::kSub, keys.client_security(keys.bad));
  ASSERT_TRUE(sub->connect(*endpoint).ok());
  ASSERT_TRUE(sub->subscribe("").ok());
  auto got = publish_until_received(*pub, *sub, {"dec.x", "secret decision"}, std::chrono::milliseconds(1500));
  EXPECT_FALSE(got.has_value());
  EXPECT_GE((*ctx)->zap_denied(), 1u);
  EXPECT_EQ((*ctx)->zap_allowed(), 0u);
}

TEST(SocketCurve, PlainClientCannotTalkToCurveServer) {
  CurveSetup keys;
  auto ctx = Context::create();
  auto router = Socket::server(**ctx, SocketType::kRouter, keys.server_security());
  auto endpoint = router->bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok());
  auto dealer = Socket::client(**ctx, SocketType::kDealer, insecure_client());
  ASSERT_TRUE(dealer->connect(*endpoint).ok());
  (void)dealer->send({"hello"});  // queued; never delivered
  auto got = router->recv(500);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST(SocketCurve, CurveServerWithoutSecretKeyIsAnError) {
  auto ctx = Context::create();
  ServerSecurity s;  // kCurve, no keys
  auto sock = Socket::server(**ctx, SocketType::kPub, s);
  EXPECT_TRUE(sock.status().is_bad_input());
}

}  // namespace
}  // namespace quorate::wire
