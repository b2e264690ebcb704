// What an attacker tries against a CURVE server with a ZAP allow list, on real sockets on 127.0.0.1: an
// unknown key, the NULL and PLAIN mechanisms, an allowed client's public key without its secret, malformed and
// empty keys, a key removed from the allow list. In every case nothing the attacker sends reaches the server,
// the server keeps serving an honest client on the same socket, and what ZAP refuses is reported with the key.
#include <gtest/gtest.h>
#include <zmq.h>

#include <mutex>
#include <set>
#include <thread>

#include "quorate/wire/socket.h"

namespace quorate::wire {
namespace {

using AttackClock = std::chrono::steady_clock;

// A ROUTER server under CURVE that admits `good` only, records ZAP denials, and echoes what it receives.
struct GuardedServer {
  CurveKeyPair server = generate_curve_keypair().value();
  CurveKeyPair good = generate_curve_keypair().value();
  std::unique_ptr<Context> ctx = Context::create().value();
  std::unique_ptr<Socket> router;
  std::string endpoint;
  std::mutex mu;
  std::vector<Context::ZapDenial> denials;  // guarded by mu
  std::vector<std::string> received;        // bodies that reached the server

  GuardedServer() {
    ctx->on_zap_denied([this](const Context::ZapDenial& d) {
      std::lock_guard<std::mutex> lock(mu);
      denials.push_back(d);
    });
    ServerSecurity s;
    s.server_keys = server;
    s.allowed_clients = {good.public_z85};
    router = std::make_unique<Socket>(Socket::server(*ctx, SocketType::kRouter, s).value());
    endpoint = router->bind("tcp://127.0.0.1:*").value();
  }
  ~GuardedServer() { router.reset(); }

  ClientSecurity client(const CurveKeyPair& keys) const {
    ClientSecurity c;
    c.client_keys = keys;
    c.server_public = server.public_z85;
    return c;
  }
  // Reads and echoes for `ms`.
  void serve_for(int ms) {
    auto until = AttackClock::now() + std::chrono::milliseconds(ms);
    while (AttackClock::now() < until) {
      auto got = router->recv(10);
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      if (!got->has_value() || (*got)->size() != 2) continue;
      received.push_back((**got)[1]);
      ASSERT_TRUE(router->send({(**got)[0], "echo:" + (**got)[1]}).ok());
    }
  }
  std::vector<Context::ZapDenial> denied() {
    std::lock_guard<std::mutex> lock(mu);
    return denials;
  }
  bool received_any(const std::string& prefix) const {
    for (const auto& r : received) {
      if (r.starts_with(prefix)) return true;
    }
    return false;
  }
};

// An honest client: its request is answered while the attack goes on.
void expect_honest_client_served(GuardedServer& s, Context& ctx) {
  auto honest = Socket::client(ctx, SocketType::kDealer, s.client(s.good));
  ASSERT_TRUE(honest.ok()) << honest.status().to_string();
  ASSERT_TRUE(honest->connect(s.endpoint).ok());
  ASSERT_TRUE(honest->send({"honest"}).ok());
  std::optional<Frames> reply;
  auto until = AttackClock::now() + std::chrono::seconds(5);
  while (!reply && AttackClock::now() < until) {
    s.serve_for(20);
    auto got = honest->recv(0);
    ASSERT_TRUE(got.ok());
    if (got->has_value()) reply = **got;
  }
  ASSERT_TRUE(reply.has_value()) << "the honest client was not served";
  EXPECT_EQ((*reply)[0], "echo:honest");
}

// A raw libzmq DEALER with whatever mechanism options the attacker chose; sends `body` every 20 ms while the
// server serves for `ms`. Closed before returning.
void attack_with_raw_socket(GuardedServer& s, const std::function<void(void*)>& configure, const std::string& body,
                            int ms) {
  void* zctx = zmq_ctx_new();
  ASSERT_NE(zctx, nullptr);
  void* sock = zmq_socket(zctx, ZMQ_DEALER);
  ASSERT_NE(sock, nullptr);
  int zero = 0;
  zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
  configure(sock);
  ASSERT_EQ(zmq_connect(sock, s.endpoint.c_str()), 0) << zmq_strerror(zmq_errno());
  for (int t = 0; t < ms; t += 20) {
    (void)zmq_send(sock, body.data(), body.size(), ZMQ_DONTWAIT);
    s.serve_for(20);
  }
  zmq_close(sock);
  zmq_ctx_term(zctx);
}

TEST(CurveAttack, UnknownKeyGetsNothingThroughIsReportedWithItsKeyAndHonestClientIsServed) {
  GuardedServer s;
  auto client_ctx = Context::create().value();
  auto stranger = generate_curve_keypair().value();
  auto attacker = Socket::client(*client_ctx, SocketType::kDealer, s.client(stranger)).value();
  ASSERT_TRUE(attacker.connect(s.endpoint).ok());
  (void)attacker.send({"attack"});  // a refused client's send may not even be queued: it times out (2 s)
  s.serve_for(1000);
  EXPECT_FALSE(s.received_any("attack"));
  auto d = s.denied();
  ASSERT_FALSE(d.empty()) << "no ZAP denial reported";
  EXPECT_EQ(d[0].client_key, stranger.public_z85);
  EXPECT_EQ(d[0].mechanism, "CURVE");
  EXPECT_TRUE(d[0].address.starts_with("127.0.0.1")) << d[0].address;
  EXPECT_GE(s.ctx->zap_denied(), 1u);
  auto reply = attacker.recv(0);
  ASSERT_TRUE(reply.ok());
  EXPECT_FALSE(reply->has_value()) << "the refused client got an answer";
  expect_honest_client_served(s, *client_ctx);
}

TEST(CurveAttack, NullAndPlainMechanismsGetNothingThrough) {
  GuardedServer s;
  // NULL: plain ZMTP, no security at all.
  attack_with_raw_socket(
      s, [](void*) {}, "null-attack", 600);
  // PLAIN: a user name and password, which a CURVE server does not speak.
  attack_with_raw_socket(
      s,
      [](void* sock) {
        ASSERT_EQ(zmq_setsockopt(sock, ZMQ_PLAIN_USERNAME, "admin", 5), 0);
        ASSERT_EQ(zmq_setsockopt(sock, ZMQ_PLAIN_PASSWORD, "admin", 5), 0);
      },
      "plain-attack", 600);
  EXPECT_FALSE(s.received_any("null-attack"));
  EXPECT_FALSE(s.received_any("plain-attack"));
  // libzmq refuses another mechanism in the ZMTP greeting, before ZAP is asked: nothing is admitted either way.
  EXPECT_EQ(s.ctx->zap_allowed(), 0u);
  auto client_ctx = Context::create().value();
  expect_honest_client_served(s, *client_ctx);
}

// Knows the server's key and an allowed client's public key (public keys are not secret), but not that client's
// secret key; or presents an all-zero or no key of its own.
TEST(CurveAttack, AllowedPublicKeyWithoutItsSecretOrMalformedKeysGetNothingThrough) {
  GuardedServer s;
  auto stranger = generate_curve_keypair().value();
  const std::string zeros(40, '0');  // valid Z85: 32 zero bytes
  struct Attempt {
    std::string body, public_key, secret_key;  // empty: not set
  };
  std::vector<Attempt> attempts = {
      {"impersonation", s.good.public_z85, stranger.secret_z85},
      {"zero-public", zeros, stranger.secret_z85},
      {"zero-both", zeros, zeros},
      {"empty-keys", "", ""},
  };
  for (const auto& a : attempts) {
    attack_with_raw_socket(
        s,
        [&](void* sock) {
          ASSERT_EQ(zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, s.server.public_z85.c_str(), 40), 0);
          if (!a.public_key.empty()) {
            ASSERT_EQ(zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, a.public_key.c_str(), 40), 0);
          }
          if (!a.secret_key.empty()) {
            ASSERT_EQ(zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a.secret_key.c_str(), 40), 0);
          }
        },
        a.body, 600);
    EXPECT_FALSE(s.received_any(a.body)) << a.body << " got through";
  }
  // None of them was admitted: the impersonator's vouch does not open under the key it claims, so ZAP is never
  // asked about the allowed key; the zero keys are refused by ZAP or fail the same way.
  EXPECT_EQ(s.ctx->zap_allowed(), 0u);
  for (const auto& d : s.denied()) EXPECT_NE(d.client_key, s.good.public_z85) << "ZAP asked about the allowed key";
  auto client_ctx = Context::create().value();
  expect_honest_client_served(s, *client_ctx);
  EXPECT_GE(s.ctx->zap_allowed(), 1u);
}

// NULL, PLAIN and an impersonator fail in libzmq before ZAP is asked: they used to leave no trace at the server.
// A watched socket reports each with the peer's address and what went wrong, read on the Context's own thread.
TEST(CurveAttack, HandshakesFailingBeforeZapAreReportedWithTheirKind) {
  GuardedServer s;
  std::mutex mu;
  std::vector<Context::HandshakeFailure> failures;  // guarded by mu
  ASSERT_TRUE(s.ctx
                  ->watch_failed_handshakes(*s.router, "query",
                                            [&](const Context::HandshakeFailure& f) {
                                              std::lock_guard<std::mutex> lock(mu);
                                              failures.push_back(f);
                                            })
                  .ok());
  auto reasons = [&] {
    std::lock_guard<std::mutex> lock(mu);
    std::set<std::string> out;
    for (const auto& f : failures) out.insert(f.reason);
    return out;
  };
  // On a loaded machine a client closed after 300 ms may not have reached its handshake: each attack is tried
  // again (at most 10 times) until its failure is reported.
  for (int i = 0; i < 10 && reasons().empty(); ++i) {
    attack_with_raw_socket(
        s, [](void*) {}, "null-attack", 300);
    attack_with_raw_socket(
        s,
        [](void* sock) {
          ASSERT_EQ(zmq_setsockopt(sock, ZMQ_PLAIN_USERNAME, "admin", 5), 0);
          ASSERT_EQ(zmq_setsockopt(sock, ZMQ_PLAIN_PASSWORD, "admin", 5), 0);
        },
        "plain-attack", 300);
    s.serve_for(100);
  }
  EXPECT_EQ(reasons(), std::set<std::string>{"security mechanism mismatch"});
  auto stranger = generate_curve_keypair().value();
  for (int i = 0; i < 10 && reasons().size() < 2; ++i) {
    attack_with_raw_socket(
        s,
        [&](void* sock) {
          ASSERT_EQ(zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, s.server.public_z85.c_str(), 40), 0);
          ASSERT_EQ(zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, s.good.public_z85.c_str(), 40), 0);
          ASSERT_EQ(zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, stranger.secret_z85.c_str(), 40), 0);
        },
        "impersonation", 300);
    s.serve_for(100);
  }
  EXPECT_EQ(reasons(), (std::set<std::string>{"security mechanism mismatch", "CURVE handshake did not verify"}));
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& f : failures) {
      EXPECT_EQ(f.socket, "query");
      EXPECT_NE(f.address.find("127.0.0.1"), std::string::npos) << f.address;
      EXPECT_NE(f.detail.find("libzmq protocol error 0x"), std::string::npos) << f.detail;
    }
    EXPECT_EQ(s.ctx->handshakes_failed(), failures.size());
  }
  auto client_ctx = Context::create().value();
  expect_honest_client_served(s, *client_ctx);
}

// The daemons have no reload: a key is removed by editing the config and restarting. Context::allow_clients
// replaces a domain's list; a new handshake with a removed key is refused and reported with the key.
TEST(CurveAttack, RemovedKeyIsRefusedOnItsNextHandshake) {
  GuardedServer s;
  auto client_ctx = Context::create().value();
  expect_honest_client_served(s, *client_ctx);
  auto replacement = generate_curve_keypair().value();
  ASSERT_TRUE(s.ctx->allow_clients("quorate", {replacement.public_z85}).ok());
  auto removed = Socket::client(*client_ctx, SocketType::kDealer, s.client(s.good)).value();
  ASSERT_TRUE(removed.connect(s.endpoint).ok());
  (void)removed.send({"removed"});  // a refused client's send may not even be queued: it times out (2 s)
  s.serve_for(1000);
  EXPECT_FALSE(s.received_any("removed"));
  bool named = false;
  for (const auto& d : s.denied()) named = named || d.client_key == s.good.public_z85;
  EXPECT_TRUE(named) << "the removed key's refusal was not reported with the key";
  auto now_allowed = Socket::client(*client_ctx, SocketType::kDealer, s.client(replacement)).value();
  ASSERT_TRUE(now_allowed.connect(s.endpoint).ok());
  ASSERT_TRUE(now_allowed.send({"replacement"}).ok());
  s.serve_for(500);
  EXPECT_TRUE(s.received_any("replacement"));
}

}  // namespace
}  // namespace quorate::wire
