// `quorate node` as a real process on 127.0.0.1: clean stop on SIGTERM, CURVE allow list at the process level,
// garbage and oversized frames survived and counted, plain TCP refused off loopback; `quorate submit` against it
// (its --json, and what it says when CURVE or the address is wrong).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "process.h"
#include "quorate/attest/keys.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/socket.h"
#include "support/test_util.h"

namespace quorate::e2e {
namespace {

namespace pb = wire::pb;
using wire::MessageType;

struct NodeFixture {
  testing::ScratchDir dir;
  int pub_port = free_port();
  int control_port = free_port();
  wire::CurveKeyPair node_keys = wire::generate_curve_keypair().value();
  wire::CurveKeyPair allowed = wire::generate_curve_keypair().value();
  wire::CurveKeyPair stranger = wire::generate_curve_keypair().value();

  NodeFixture() {
    auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
    EXPECT_TRUE(attest::write_key_pair(dir / "n1.key.pem", pair).ok());
  }

  std::filesystem::path write_config(bool insecure, const std::string& extra = "") {
    EXPECT_TRUE(wire::write_curve_keypair(node_keys, dir / "node").ok());
    EXPECT_TRUE(wire::write_curve_keypair(allowed, dir / "allowed").ok());
    auto path = dir / "node.toml";
    std::ofstream(path) << "node_id = \"n1\"\ndata_dir = \"data\"\nsigning_key = \"n1.key.pem\"\n"
                        << "[network]\npublish = \"" << loopback(pub_port) << "\"\ncontrol = \""
                        << loopback(control_port) << "\"\nheartbeat_interval_ms = 100\n"
                        << (insecure
                                ? "insecure = true\n"
                                : "curve_secret_key = \"node.curve.key\"\nallowed_clients = [\"allowed.curve.pub\"]\n")
                        << extra;
    return path;
  }
  std::unique_ptr<Process> start(const std::filesystem::path& config) {
    auto p = std::make_unique<Process>(std::vector<std::string>{quorate_bin(), "node", "--config", config.string()},
                                       dir / "node.out", dir / "node.err");
    EXPECT_TRUE(wait_until([&] { return p->err().find("node_started") != std::string::npos || !p->running(); },
                           std::chrono::seconds(20)))
        << p->err();
    return p;
  }
};

// Counts heartbeats received by a SUB with `keys` within `limit`.
int heartbeats_seen(const std::string& endpoint, const wire::CurveKeyPair& keys, const std::string& server_public,
                    std::chrono::milliseconds limit) {
  auto ctx = wire::Context::create().value();
  wire::ClientSecurity cs;
  cs.client_keys = keys;
  cs.server_public = server_public;
  auto sub = wire::Socket::client(*ctx, wire::SocketType::kSub, cs).value();
  EXPECT_TRUE(sub.subscribe("hb.").ok());
  EXPECT_TRUE(sub.connect(endpoint).ok());
  int n = 0;
  auto deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    auto got = sub.recv(50);
    if (got.ok() && got->has_value()) ++n;
  }
  return n;
}

TEST(NodeProcess, StopsCleanlyOnSigterm) {
  NodeFixture f;
  auto node = f.start(f.write_config(/*insecure=*/true));
  ASSERT_TRUE(node->running()) << node->err();
  node->signal(SIGTERM);
  auto code = node->wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << node->err();
  EXPECT_NE(node->err().find("\"event\":\"node_stopped\""), std::string::npos);
}

TEST(NodeProcess, CurveClientNotInAllowListCannotSubscribe) {
  NodeFixture f;
  auto node = f.start(f.write_config(/*insecure=*/false));
  ASSERT_TRUE(node->running()) << node->err();
  EXPECT_EQ(heartbeats_seen(loopback(f.pub_port), f.stranger, f.node_keys.public_z85, std::chrono::milliseconds(1500)),
            0);
  EXPECT_GT(heartbeats_seen(loopback(f.pub_port), f.allowed, f.node_keys.public_z85, std::chrono::milliseconds(1500)),
            0);
  node->signal(SIGTERM);
  ASSERT_EQ(node->wait(std::chrono::seconds(10)), 0);
  // The refused handshakes were counted.
  auto err = node->err();
  auto pos = err.find("\"event\":\"node_stopped\"");
  ASSERT_NE(pos, std::string::npos);
  auto line = err.substr(err.rfind('\n', pos) + 1);
  auto j = nlohmann::json::parse(line.substr(0, line.find('\n')));
  EXPECT_GE(j["zap_denied"].get<int>(), 1);
}

TEST(NodeProcess, GarbageAndOversizedFramesAreSurvivedAndCounted) {
  NodeFixture f;
  auto node = f.start(f.write_config(/*insecure=*/true, "[limits]\nmax_control_bytes = 2048\n"));
  ASSERT_TRUE(node->running()) << node->err();
  auto ctx = wire::Context::create().value();
  wire::ClientSecurity cs;
  cs.transport = wire::Transport::kInsecure;
  {
    auto dealer = wire::Socket::client(*ctx, wire::SocketType::kDealer, cs).value();
    ASSERT_TRUE(dealer.connect(loopback(f.control_port)).ok());
    ASSERT_TRUE(dealer.send({"\x00\xff garbage"}).ok());
    ASSERT_TRUE(dealer.send({std::string(100000, 'Q')}).ok());
    pb::BuildRequest big;
    big.set_request_id("big");
    big.set_repo(std::string(4000, 'r'));
    ASSERT_TRUE(dealer.send({wire::encode_frame(MessageType::kBuildRequest, big)}).ok());
    ASSERT_TRUE(dealer.send({std::string("QW\x09\x01", 4)}).ok());  // another schema version
    // Still answering.
    pb::HistoryRequest h;
    ASSERT_TRUE(dealer.send({wire::encode_frame(MessageType::kHistoryRequest, h)}).ok());
    auto got = dealer.recv(10000);
    ASSERT_TRUE(got.ok() && got->has_value());
    pb::HistoryResponse resp;
    EXPECT_TRUE(wire::decode_message((**got)[0], MessageType::kHistoryResponse, wire::Limits{}, resp).ok());
    EXPECT_EQ(resp.node_id(), "n1");
  }
  EXPECT_TRUE(node->running());
  node->signal(SIGTERM);
  ASSERT_EQ(node->wait(std::chrono::seconds(10)), 0);
  auto err = node->err();
  EXPECT_NE(err.find("\"reason\":\"garbage\""), std::string::npos);
  EXPECT_NE(err.find("\"reason\":\"oversized\""), std::string::npos);
  EXPECT_NE(err.find("\"reason\":\"bad_version\""), std::string::npos);
  EXPECT_NE(err.find("\"dropped\":4"), std::string::npos) << err;
}

TEST(NodeProcess, PlainTcpOffLoopbackIsRefused) {
  NodeFixture f;
  auto path = f.dir / "node.toml";
  std::ofstream(path)
      << "node_id = \"n1\"\ndata_dir = \"data\"\nsigning_key = \"n1.key.pem\"\n[network]\ninsecure = true\n"
      << "publish = \"tcp://0.0.0.0:" << f.pub_port << "\"\n";
  auto r = run({quorate_bin(), "node", "--config", path.string()}, f.dir.path(), std::chrono::seconds(20));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("loopback only"), std::string::npos) << r.err;
}

// Issue 18: a host name spelled like a loopback address is not loopback, for the node's binds and for
// `quorate submit --insecure`.
TEST(NodeProcess, PlainTcpToANameSpelledLikeLoopbackIsRefused) {
  NodeFixture f;
  auto path = f.dir / "node.toml";
  std::ofstream(path)
      << "node_id = \"n1\"\ndata_dir = \"data\"\nsigning_key = \"n1.key.pem\"\n[network]\ninsecure = true\n"
      << "publish = \"tcp://127.attacker.example:" << f.pub_port << "\"\n";
  auto r = run({quorate_bin(), "node", "--config", path.string()}, f.dir.path(), std::chrono::seconds(20));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("loopback only"), std::string::npos) << r.err;
  auto s =
      run({quorate_bin(), "submit", "--repo", f.dir.path().string(), "--commit", std::string(40, 'a'), "--insecure",
           "--node", "tcp://127.attacker.example:" + std::to_string(f.control_port), "--timeout", "5"},
          f.dir.path(), std::chrono::seconds(20));
  EXPECT_EQ(s.code, 2) << s.err;
  EXPECT_NE(s.err.find("loopback only"), std::string::npos) << s.err;
}

// Issue 18: a wrong server key, a client key not in allowed_clients and a port with nothing listening all
// printed the same "no answer". The node logs the denial when it happens, with the client's key, and
// `quorate submit` says which case is likely.
TEST(NodeProcess, RefusedClientsAreLoggedAndSubmitSaysWhy) {
  NodeFixture f;
  auto node = f.start(f.write_config(/*insecure=*/false));
  ASSERT_TRUE(node->running()) << node->err();
  ASSERT_TRUE(wire::write_curve_keypair(f.stranger, f.dir / "stranger").ok());
  auto submit = [&](const std::string& endpoint, const std::string& key, const std::string& server_key,
                    const std::string& timeout = "12") {
    return run({quorate_bin(), "submit", "--repo", f.dir.path().string(), "--commit", std::string(40, 'a'), "--node",
                endpoint, "--node-key", server_key, "--curve-secret-key", key, "--timeout", timeout},
               f.dir.path(), std::chrono::seconds(60));
  };
  // Not in allowed_clients: the node logs it with the key; submit names both CURVE causes.
  auto stranger = submit(loopback(f.control_port), (f.dir / "stranger.curve.key").string(), f.node_keys.public_z85);
  EXPECT_NE(stranger.code, 0);
  std::string said = stranger.out + stranger.err;
  EXPECT_NE(said.find("allowed_clients"), std::string::npos) << said;
  EXPECT_TRUE(wait_until([&] { return node->err().find("\"event\":\"zap_denied\"") != std::string::npos; },
                         std::chrono::seconds(10)))
      << node->err();
  EXPECT_NE(node->err().find(f.stranger.public_z85), std::string::npos) << node->err();
  EXPECT_EQ(node->err().find(f.stranger.secret_z85), std::string::npos);
  // An allowed client given the wrong server key (here the stranger's): the handshake fails before the node's
  // ZAP handler sees the client, so nothing is logged against the allowed key, and submit names the wrong key.
  // The node logs the failed handshake itself (handshake_failed, with the peer's address and the kind).
  auto wrong_key = submit(loopback(f.control_port), (f.dir / "allowed.curve.key").string(), f.stranger.public_z85, "5");
  EXPECT_NE(wrong_key.code, 0);
  said = wrong_key.out + wrong_key.err;
  EXPECT_NE(said.find("CURVE handshake failed"), std::string::npos) << said;
  EXPECT_NE(said.find("server key given here is wrong"), std::string::npos) << said;
  EXPECT_EQ(said.find("nothing is listening"), std::string::npos) << said;
  EXPECT_TRUE(wait_until(
      [&] {
        const std::string err = node->err();
        return err.find("\"event\":\"handshake_failed\"") != std::string::npos &&
               err.find("\"reason\":\"CURVE handshake did not verify\"") != std::string::npos &&
               err.find("\"socket\":\"control\"") != std::string::npos;
      },
      std::chrono::seconds(10)))
      << node->err();
  std::istringstream log(node->err());
  for (std::string line; std::getline(log, line);) {
    if (line.find("\"event\":\"zap_denied\"") == std::string::npos) continue;
    EXPECT_EQ(line.find(f.allowed.public_z85), std::string::npos) << line;
  }
  // Nothing listening.
  auto nobody = submit(loopback(free_port()), (f.dir / "allowed.curve.key").string(), f.node_keys.public_z85);
  EXPECT_NE(nobody.code, 0);
  said = nobody.out + nobody.err;
  EXPECT_NE(said.find("nothing is listening"), std::string::npos) << said;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(std::chrono::seconds(10)), 0);
}

// A node given build.repositories refuses a request naming anything else (here the test's own directory, a local
// path on the node's host) before it is queued, and says which list refused it.
TEST(NodeProcess, ARepositoryOutsideTheListIsRejected) {
  NodeFixture f;
  auto node =
      f.start(f.write_config(/*insecure=*/true, "[build]\nrepositories = [\"https://git.example.org/acme/\"]\n"));
  ASSERT_TRUE(node->running()) << node->err();
  EXPECT_NE(node->err().find("\"repositories\":[\"https://git.example.org/acme/\"]"), std::string::npos) << node->err();
  auto r = run({quorate_bin(), "submit", "--json", "--insecure", "--repo", f.dir.path().string(), "--commit",
                std::string(40, 'a'), "--node", loopback(f.control_port), "--timeout", "20"},
               f.dir.path(), std::chrono::seconds(60));
  EXPECT_NE(r.out.find("REJECTED"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("is not one this node builds (build.repositories)"), std::string::npos) << r.out;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(std::chrono::seconds(10)), 0);
}

// `submit --json` prints one compact JSON object per line, as every --json does (the other commands:
// FirstHour.JsonIsOneCompactObjectPerLineEverywhere); the node's answer is in it, and nothing else is on stdout.
TEST(NodeProcess, SubmitJsonIsOneObjectPerLine) {
  NodeFixture f;
  auto node = f.start(f.write_config(/*insecure=*/true));
  ASSERT_TRUE(node->running()) << node->err();
  auto r = run({quorate_bin(), "submit", "--json", "--insecure", "--repo", f.dir.path().string(), "--commit",
                std::string(40, 'a'), "--node", loopback(f.control_port), "--timeout", "20"},
               f.dir.path(), std::chrono::seconds(60));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n') << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_EQ(j["jobs"].size(), 1u) << r.out;
  EXPECT_EQ(j["jobs"][0].value("node_id", ""), "n1") << r.out;
  node->signal(SIGTERM);
  EXPECT_EQ(node->wait(std::chrono::seconds(10)), 0);
}

TEST(NodeProcess, NoCurveKeyAndNoInsecureFlagIsRefused) {
  NodeFixture f;
  auto path = f.dir / "node.toml";
  std::ofstream(path) << "node_id = \"n1\"\ndata_dir = \"data\"\nsigning_key = \"n1.key.pem\"\n";
  auto r = run({quorate_bin(), "node", "--config", path.string()}, f.dir.path(), std::chrono::seconds(20));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no CURVE secret key"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quorate::e2e
