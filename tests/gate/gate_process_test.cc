// `quorate gate` as a process: SIGHUP rotates the certificate, SIGTERM exits 0, and decisions arriving live
// from the verifier daemon (fed by scripted nodes, as in tests/e2e) turn a denial into an admission.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "e2e/process.h"
#include "e2e/scripted_node.h"
#include "gate_support.h"
#include "quorate/quorum/store.h"
#include "quorate/wire/socket.h"

namespace quorate::gate_test {
namespace {

using e2e::free_port;
using e2e::loopback;
using e2e::Process;
using e2e::wait_until;

// Starts `quorate gate` on a free port; the port from its "gate_started" log line (0 if it did not start).
struct GateProcess {
  std::unique_ptr<Process> p;
  int port = 0;
  GateProcess(const fs::path& dir, const fs::path& store, const fs::path& policy)
      : GateProcess(dir, std::vector<std::string>{"--store", store.string()}, policy) {}
  // `source`: --store STORE.db, or --quorum ENDPOINT with its keys.
  GateProcess(const fs::path& dir, const std::vector<std::string>& source, const fs::path& policy) {
    std::vector<std::string> argv{testing::quorate_bin(),
                                  "gate",
                                  "--listen",
                                  "127.0.0.1:0",
                                  "--tls-cert",
                                  (dir / "cert.pem").string(),
                                  "--tls-key",
                                  (dir / "key.pem").string(),
                                  "--policy",
                                  policy.string()};
    argv.insert(argv.end(), source.begin(), source.end());
    p = std::make_unique<Process>(argv, dir / "gate.out", dir / "gate.err");
    wait_until([&] { return p->err().find("gate_started") != std::string::npos || !p->running(); },
               std::chrono::seconds(20));
    std::istringstream in(p->err());
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("event", "") == "gate_started") {
        std::string listen = j.value("listen", "");
        port = std::atoi(listen.c_str() + listen.rfind(':') + 1);
      }
    }
  }
};

json ask(int port, const fs::path& cert, const json& review) {
  auto r = client(port, cert)->Post("/validate", review.dump(), "application/json");
  if (!r || r->status != 200) return {};
  return json::parse(r->body, nullptr, false)["response"];
}

std::string message_of(const json& r) {
  return r.is_object() ? r.value("status", json::object()).value("message", "") : "";
}

using ScriptedNodes = std::map<std::string, std::unique_ptr<e2e::ScriptedNode>>;

// `quorate quorum --config DIR/quorum.toml`, once it has logged verifier_started (or stopped).
std::unique_ptr<Process> gp_start_verifier(const fs::path& dir) {
  auto verifier = std::make_unique<Process>(
      std::vector<std::string>{testing::quorate_bin(), "quorum", "--config", (dir / "quorum.toml").string()},
      dir / "verifier.out", dir / "verifier.err");
  wait_until([&] { return verifier->err().find("verifier_started") != std::string::npos || !verifier->running(); },
             std::chrono::seconds(20));
  return verifier;
}

void gp_serve(ScriptedNodes& nodes) {
  for (auto& [id, n] : nodes) {
    n->serve();
    n->heartbeat();
  }
}

// What both sources of decisions answer as votes arrive for "good" (threshold 2): denied with no decision,
// then rejected with b and c missing after a's vote, then admitted after b's. Reviews are named
// `<uid>-0`, `<uid>-1`, `<uid>-2`.
void gp_expect_admitted_after_two_votes(GateProcess& gate, const fs::path& cert, ScriptedNodes& nodes, Roster& roster,
                                        const std::string& uid, Process& verifier) {
  gp_serve(nodes);
  json before = ask(gate.port, cert, pod_review(uid + "-0", {pinned("good")}));
  ASSERT_TRUE(before.is_object()) << gate.p->err();
  EXPECT_FALSE(before.value("allowed", true));
  EXPECT_NE(message_of(before).find("no decision"), std::string::npos) << before.dump() << "\n" << gate.p->err();

  // One vote of two: rejected, b and c missing.
  nodes["a"]->add(roster.attestation("a", commit_id("good"), "good"));
  std::string one_vote;
  EXPECT_TRUE(wait_until(
      [&] {
        gp_serve(nodes);
        one_vote = message_of(ask(gate.port, cert, pod_review(uid + "-1", {pinned("good")})));
        return one_vote.find("missing nodes: b, c") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << one_vote << "\n"
      << verifier.err();

  // The second vote arrives: the quorum accepts, the gate admits.
  nodes["b"]->add(roster.attestation("b", commit_id("good"), "good"));
  json last;
  EXPECT_TRUE(wait_until(
      [&] {
        gp_serve(nodes);
        last = ask(gate.port, cert, pod_review(uid + "-2", {pinned("good")}));
        return last.is_object() && last.value("allowed", false);
      },
      std::chrono::seconds(30)))
      << last.dump() << "\n"
      << gate.p->err();
}

// `quorate gate` over an empty store (as `quorate quorum` creates it), a roster of a, b, c (threshold 2) and a
// certificate for 127.0.0.1 with common name `cn`.
struct GateOverEmptyStore {
  testing::ScratchDir dir;
  Roster roster{dir.path(), "policy.toml", 2};
  std::unique_ptr<GateProcess> gate;
  explicit GateOverEmptyStore(const std::string& cn) {
    make_certificate(dir / "cert.pem", dir / "key.pem", cn);
    EXPECT_TRUE(quorum::Store::open(dir / "store.db").ok());
    gate = std::make_unique<GateProcess>(dir.path(), dir / "store.db", dir / "policy.toml");
  }
};

TEST(GateProcess, SighupRotatesTheCertificateAndSigtermExitsZero) {
  GateOverEmptyStore setup("gate-one");
  auto& dir = setup.dir;
  GateProcess& gate = *setup.gate;
  ASSERT_GT(gate.port, 0) << gate.p->err();
  EXPECT_NE(served_subject(gate.port).find("gate-one"), std::string::npos);

  make_certificate(dir / "cert.pem", dir / "key.pem", "gate-two");
  gate.p->signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return served_subject(gate.port).find("gate-two") != std::string::npos; },
                         std::chrono::seconds(10)))
      << gate.p->err();
  // curl trusting only the new certificate gets through.
  auto health = testing::run("curl -sS --max-time 10 --cacert " + testing::sh((dir / "cert.pem").string()) +
                             " https://127.0.0.1:" + std::to_string(gate.port) + "/healthz");
  EXPECT_EQ(health.exit_code, 0) << health.out;
  EXPECT_EQ(health.out, "ok\n");

  gate.p->signal(SIGTERM);
  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gate.p->err();
  EXPECT_NE(gate.p->err().find("gate_stopped"), std::string::npos);
}

// SIGTERM as a review arrives on a new connection, as in a rolling update of the gate: it stops accepting
// connections, answers the review, and exits 0. cpp-httplib's stop() alone closes unanswered a connection whose
// handshake is under way (seen failing without Server::stop's wait); here the handshake is held open across the
// signal, so the test does not depend on timing.
TEST(GateProcess, SigtermAnswersTheReviewInProgressThenExits) {
  GateOverEmptyStore setup("gate");
  GateProcess& gate = *setup.gate;
  ASSERT_GT(gate.port, 0) << gate.p->err();

  const std::string body = pod_review("in-flight", {pinned("good")}).dump();
  RawTls c(gate.port, /*handshake=*/false);
  ASSERT_TRUE(c.hello_sent);
  ASSERT_TRUE(c.wait_hello());
  gate.p->signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(c.finish());
  ASSERT_TRUE(
      c.write("POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              "Content-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, body.size() / 2)));
  EXPECT_TRUE(wait_until([&] { return !testing::port_answers(gate.port); }, std::chrono::seconds(10)))
      << "the gate still accepts connections after SIGTERM";
  EXPECT_TRUE(gate.p->running()) << "the gate exited with a review in progress: " << gate.p->err();
  ASSERT_TRUE(c.write(body.substr(body.size() / 2)));
  auto answer = c.read_until_closed();
  ASSERT_TRUE(answer.has_value()) << "the gate did not close the connection after answering";
  EXPECT_EQ(answer->rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << *answer;
  auto json_at = answer->find("\r\n\r\n");
  ASSERT_NE(json_at, std::string::npos) << *answer;
  json response = json::parse(answer->substr(json_at + 4), nullptr, false);
  ASSERT_TRUE(response.is_object()) << *answer;
  EXPECT_EQ(response["response"].value("uid", ""), "in-flight");
  EXPECT_NE(message_of(response["response"]).find("no decision"), std::string::npos) << response.dump();

  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gate.p->err();
  EXPECT_NE(gate.p->err().find("\"uid\":\"in-flight\""), std::string::npos) << gate.p->err();
}

// The connections waiting in the accept queue of the socket listening on 127.0.0.1:`port` (/proc/net/tcp's
// rx_queue of a LISTEN entry); -1 when there is no such socket.
long listen_backlog(int port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // the header
  char want[16];
  std::snprintf(want, sizeof want, "0100007F:%04X", static_cast<unsigned>(port));
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues;
    fields >> slot >> local >> remote >> state >> queues;
    if (local == want && state == "0A") return std::stol(queues.substr(queues.find(':') + 1), nullptr, 16);
  }
  return -1;
}

// The same for a connection accepted while every thread of the gate is busy (8, each holding a keep-alive
// connection for up to 2 s): it waits in cpp-httplib's queue with its ClientHello sent when SIGTERM comes, and
// is served when a thread frees up.
TEST(GateProcess, SigtermServesAConnectionQueuedBehindBusyThreads) {
  GateOverEmptyStore setup("gate");
  GateProcess& gate = *setup.gate;
  ASSERT_GT(gate.port, 0) << gate.p->err();

  std::vector<std::unique_ptr<RawTls>> busy;
  for (int i = 0; i < 8; ++i) {
    busy.push_back(std::make_unique<RawTls>(gate.port));
    ASSERT_TRUE(busy.back()->connected);
    ASSERT_TRUE(busy.back()->write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    char buf[512];
    ASSERT_GT(SSL_read(busy.back()->ssl, buf, sizeof buf), 0);  // answered: its thread now waits for the next
  }
  RawTls c(gate.port, /*handshake=*/false);
  ASSERT_TRUE(c.hello_sent);
  // Accepted by the gate before SIGTERM: one still in the kernel's accept queue when the listening socket
  // closes is reset, as it should be (CI failed here once, the test over in 136 ms instead of 2 to 4 s).
  ASSERT_TRUE(wait_until([&] { return listen_backlog(gate.port) == 0; }, std::chrono::seconds(10)));
  gate.p->signal(SIGTERM);
  ASSERT_TRUE(c.wait_hello());  // a thread took it, after a keep-alive connection timed out
  ASSERT_TRUE(c.finish());
  const std::string body = pod_review("queued", {pinned("good")}).dump();
  ASSERT_TRUE(
      c.write("POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body));
  auto answer = c.read_until_closed();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << *answer << "\n" << gate.p->err();
  EXPECT_NE(answer->find("\"uid\":\"queued\""), std::string::npos) << *answer;
  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gate.p->err();
}

// The gate's peak resident memory in kB (VmHWM).
long peak_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

// 64 MiB sent chunked, or gzip-compressed under a small Content-Length: cpp-httplib 0.11 would hold the whole
// body (set_payload_max_length bounds only a Content-Length, before decompression). The gate keeps at most its
// 1 MiB limit and goes on answering. The chunked one it reads no further than 2 MiB and 64 KiB
// (kChunkedAllowance) and closes that connection: curl, still sending, may see the reset before the 400, so
// only the gate's log is asserted. The gzip one it inflates no further than 1 MiB, answers 400 (curl has sent
// its 64 KiB by then) and closes.
TEST(GateProcess, LargeChunkedOrCompressedBodiesDoNotGrowTheGatesMemory) {
  GateOverEmptyStore setup("gate");
  auto& dir = setup.dir;
  GateProcess& gate = *setup.gate;
  ASSERT_GT(gate.port, 0) << gate.p->err();
  ASSERT_TRUE(ask(gate.port, dir / "cert.pem", pod_review("warm-up", {pinned("good")})).is_object());
  const long before = peak_kb(gate.p->pid());
  ASSERT_GT(before, 0);

  const std::string curl = "curl -sS --max-time 60 --cacert " + testing::sh((dir / "cert.pem").string()) +
                           " -H 'Content-Type: application/json' -w '\\n%{http_code}' --data-binary @- ";
  const std::string url = "https://127.0.0.1:" + std::to_string(gate.port) + "/validate";
  auto chunked =
      testing::run("head -c 67108864 /dev/zero | tr '\\0' ' ' | " + curl + "-H 'Transfer-Encoding: chunked' " + url);
  EXPECT_NE(gate.p->err().find("\"why\":\"the request's body went past 2162688 bytes\""), std::string::npos)
      << chunked.out << "\n"
      << gate.p->err();
  auto gzipped = testing::run("head -c 67108864 /dev/zero | tr '\\0' ' ' | gzip -1 | " + curl +
                              "-H 'Content-Encoding: gzip' " + url);
  EXPECT_NE(gzipped.out.find("body exceeds the limit of 1048576 bytes\"}\n400"), std::string::npos) << gzipped.out;
  EXPECT_NE(gate.p->err().find("\"why\":\"the gzip body inflated past 1048576 bytes\""), std::string::npos)
      << gate.p->err();

  const long after = peak_kb(gate.p->pid());
  EXPECT_LT(after - before, 16 * 1024) << "VmHWM " << before << " kB -> " << after << " kB";
  json next = ask(gate.port, dir / "cert.pem", pod_review("next", {pinned("good")}));
  ASSERT_TRUE(next.is_object()) << gate.p->err();
  EXPECT_NE(message_of(next).find("no decision"), std::string::npos) << next.dump();

  gate.p->signal(SIGTERM);
  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gate.p->err();
}

// The network tests' verifier daemon, fed by scripted nodes a, b, c (threshold 2); the gate reads its store.
TEST(GateProcess, PodIsDeniedBeforeTheQuorumDecidesAndAllowedAfter) {
  testing::ScratchDir dir;
  Roster roster(dir.path(), "policy.toml", 2);
  make_certificate(dir / "cert.pem", dir / "key.pem", "gate");
  int pub_port = free_port(), query_port = free_port();
  ScriptedNodes nodes;
  {
    std::ofstream quorum(dir / "quorum.toml");
    quorum << "policy = \"policy.toml\"\ndata_dir = \"verifier\"\n[network]\ninsecure = true\n"
           << "publish = \"" << loopback(pub_port) << "\"\nquery = \"" << loopback(query_port) << "\"\n"
           << "history_timeout_ms = 500\n";
    for (const char* id : {"a", "b", "c"}) {
      int p1 = free_port(), p2 = free_port();
      quorum << "\n[[nodes]]\nid = \"" << id << "\"\npublish = \"" << loopback(p1) << "\"\ncontrol = \"" << loopback(p2)
             << "\"\n";
      nodes[id] = std::make_unique<e2e::ScriptedNode>(id, loopback(p1), loopback(p2));
    }
  }
  auto verifier = gp_start_verifier(dir.path());
  ASSERT_TRUE(verifier->running()) << verifier->err();

  GateProcess gate(dir.path(), dir / "verifier" / "store.db", dir / "policy.toml");
  ASSERT_GT(gate.port, 0) << gate.p->err();
  gp_expect_admitted_after_two_votes(gate, dir / "cert.pem", nodes, roster, "live", *verifier);

  gate.p->signal(SIGTERM);
  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  verifier->signal(SIGTERM);
  (void)verifier->wait(std::chrono::seconds(10));
}

// --quorum: the gate asks the verifier daemon over CURVE (nodes, verifier and gate each with a key pair), with
// the same outcomes as from the store; a killed verifier gives a denial within the bound, a verifier that
// answers garbage a denial saying so, and the gate keeps serving.
TEST(GateProcess, QuorumModeAsksTheVerifierOverCurveAndFailsClosed) {
  testing::ScratchDir dir;
  Roster roster(dir.path(), "policy.toml", 2);
  make_certificate(dir / "cert.pem", dir / "key.pem", "gate");
  wire::CurveKeyPair verifier_keys = wire::generate_curve_keypair().value();
  wire::CurveKeyPair gate_keys = wire::generate_curve_keypair().value();
  wire::CurveKeyPair node_keys = wire::generate_curve_keypair().value();
  ASSERT_TRUE(wire::write_curve_keypair(verifier_keys, dir / "verifier").ok());
  ASSERT_TRUE(wire::write_curve_keypair(gate_keys, dir / "gate").ok());
  wire::ServerSecurity node_security;
  node_security.server_keys = node_keys;
  node_security.allowed_clients = {verifier_keys.public_z85};
  int pub_port = free_port(), query_port = free_port();
  ScriptedNodes nodes;
  {
    std::ofstream quorum(dir / "quorum.toml");
    quorum
        << "policy = \"policy.toml\"\ndata_dir = \"verifier\"\n[network]\ncurve_secret_key = \"verifier.curve.key\"\n"
        << "allowed_clients = [\"gate.curve.pub\"]\npublish = \"" << loopback(pub_port) << "\"\nquery = \""
        << loopback(query_port) << "\"\nhistory_timeout_ms = 500\n";
    for (const char* id : {"a", "b", "c"}) {
      int p1 = free_port(), p2 = free_port();
      quorum << "\n[[nodes]]\nid = \"" << id << "\"\npublish = \"" << loopback(p1) << "\"\ncontrol = \"" << loopback(p2)
             << "\"\ncurve_public_key = \"" << node_keys.public_z85 << "\"\n";
      nodes[id] = std::make_unique<e2e::ScriptedNode>(id, loopback(p1), loopback(p2), node_security);
    }
  }
  auto verifier = gp_start_verifier(dir.path());
  ASSERT_TRUE(verifier->running()) << verifier->err();

  GateProcess gate(dir.path(),
                   {"--quorum", loopback(query_port), "--quorum-key", (dir / "verifier.curve.pub").string(),
                    "--curve-secret-key", (dir / "gate.curve.key").string(), "--quorum-timeout-ms", "1500"},
                   dir / "policy.toml");
  ASSERT_GT(gate.port, 0) << gate.p->err();
  gp_expect_admitted_after_two_votes(gate, dir / "cert.pem", nodes, roster, "q", *verifier);

  // A gate given another policy than the verifier's (threshold 1) does not take the verifier's decisions.
  {
    std::string text = testing::slurp(dir / "policy.toml");
    text.replace(text.find("threshold = 2"), 13, "threshold = 1");
    std::ofstream(dir / "other-policy.toml") << text;
    fs::create_directories(dir / "other");
    make_certificate(dir / "other" / "cert.pem", dir / "other" / "key.pem", "other");
    GateProcess other(dir / "other",
                      {"--quorum", loopback(query_port), "--quorum-key", (dir / "verifier.curve.pub").string(),
                       "--curve-secret-key", (dir / "gate.curve.key").string()},
                      dir / "other-policy.toml");
    ASSERT_GT(other.port, 0) << other.p->err();
    json r = ask(other.port, dir / "other" / "cert.pem", pod_review("q-other", {pinned("good")}));
    EXPECT_FALSE(r.value("allowed", true)) << r.dump();
    EXPECT_NE(message_of(r).find("the verifier decided under policy"), std::string::npos) << r.dump();
    other.p->signal(SIGTERM);
    (void)other.p->wait(std::chrono::seconds(15));
  }

  // The verifier dies: denied, saying so, within the bound (1.5 s, once per review even with two images).
  verifier->signal(SIGKILL);
  (void)verifier->wait(std::chrono::seconds(10));
  auto t0 = std::chrono::steady_clock::now();
  json silent = ask(gate.port, dir / "cert.pem", pod_review("q-3", {pinned("good"), pinned("good")}));
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(silent.is_object()) << gate.p->err();
  EXPECT_FALSE(silent.value("allowed", true));
  EXPECT_NE(message_of(silent).find("did not answer within 1500 ms"), std::string::npos) << silent.dump();
  EXPECT_NE(message_of(silent).find("fail closed"), std::string::npos) << silent.dump();
  EXPECT_LT(waited, std::chrono::milliseconds(1500 + 2500));
  EXPECT_NE(served_subject(gate.port).find("gate"), std::string::npos);  // still serving

  // Something else takes the verifier's place and answers garbage: denied, saying so.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::thread impostor([&] {
    auto ctx = wire::Context::create().value();
    wire::ServerSecurity s;
    s.server_keys = verifier_keys;
    s.allowed_clients = {gate_keys.public_z85};
    auto router = wire::Socket::server(*ctx, wire::SocketType::kRouter, s).value();
    if (!router.bind(loopback(query_port)).ok()) return;
    while (!stop) {
      auto got = router.recv(50);
      if (!got.ok() || !got->has_value() || (*got)->empty()) continue;
      (void)router.send({(**got)[0], "\x01garbage, not an Answer"});
      ++answered;
    }
  });
  json garbled;
  EXPECT_TRUE(wait_until(
      [&] {
        garbled = ask(gate.port, dir / "cert.pem", pod_review("q-4", {pinned("good")}));
        return message_of(garbled).find("garbage") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << garbled.dump() << "\n"
      << gate.p->err();
  EXPECT_FALSE(garbled.value("allowed", true));
  stop = true;
  impostor.join();
  EXPECT_GT(answered.load(), 0);

  gate.p->signal(SIGTERM);
  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gate.p->err();
}

// --quorum takes the verifier's decisions, made under its own policy only: a gate.toml naming a stricter policy
// for a namespace would deny every image there, so the gate refuses to start (exit 2) saying so. A policy with
// the verifier's digest (a copy of it) is fine, and an excluded namespace is admitted without asking.
TEST(GateProcess, QuorumModeRefusesAStricterNamespacePolicyAndHonoursExclusion) {
  testing::ScratchDir dir;
  Roster roster(dir.path(), "policy.toml", 2);
  Roster strict(dir.path(), "strict.toml", 3);
  fs::copy_file(dir / "policy.toml", dir / "same.toml");
  make_certificate(dir / "cert.pem", dir / "key.pem", "gate");
  wire::CurveKeyPair verifier_keys = wire::generate_curve_keypair().value();
  ASSERT_TRUE(wire::write_curve_keypair(verifier_keys, dir / "verifier").ok());
  ASSERT_TRUE(wire::write_curve_keypair(wire::generate_curve_keypair().value(), dir / "gate").ok());
  // Nothing listens there: the gate connects lazily, and the excluded namespace never asks.
  std::vector<std::string> quorum = {"--quorum",           loopback(free_port()),
                                     "--quorum-key",       verifier_keys.public_z85,
                                     "--curve-secret-key", (dir / "gate.curve.key").string(),
                                     "--config",           (dir / "gate.toml").string()};

  testing::spit(dir / "gate.toml", "[[namespaces]]\nname = \"payments\"\npolicy = \"strict.toml\"\n");
  std::string base = "gate --listen 127.0.0.1:0 --tls-cert " + testing::sh((dir / "cert.pem").string()) +
                     " --tls-key " + testing::sh((dir / "key.pem").string()) + " --policy " +
                     testing::sh((dir / "policy.toml").string());
  for (const auto& a : quorum) base += " " + testing::sh(a);
  auto refused = testing::run("timeout 20 " + testing::quorate_command(base));  // a gate that starts serves on
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_NE(refused.out.find("namespace 'payments'"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("verifier answers under its own policy"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("needs --store"), std::string::npos) << refused.out;

  testing::spit(dir / "gate.toml",
                "[[namespaces]]\nname = \"payments\"\npolicy = \"same.toml\"\n\n"
                "[[namespaces]]\nname = \"kube-system\"\nexclude = true\n");
  GateProcess gate(dir.path(), quorum, dir / "policy.toml");
  ASSERT_GT(gate.port, 0) << gate.p->err();
  json excluded = ask(gate.port, dir / "cert.pem", pod_review("q-excluded", {"busybox:latest"}, "kube-system"));
  EXPECT_TRUE(excluded.value("allowed", false)) << excluded.dump() << "\n" << gate.p->err();
  gate.p->signal(SIGTERM);
  auto code = gate.p->wait(std::chrono::seconds(15));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << gate.p->err();
}

// Exactly one source of decisions, and --quorum with its keys: bad usage (exit 2) otherwise.
TEST(GateProcess, StoreOrQuorumExactlyOne) {
  testing::ScratchDir dir;
  Roster roster(dir.path(), "policy.toml", 2);
  make_certificate(dir / "cert.pem", dir / "key.pem", "gate");
  std::string base = "gate --listen 127.0.0.1:0 --tls-cert " + testing::sh((dir / "cert.pem").string()) +
                     " --tls-key " + testing::sh((dir / "key.pem").string()) + " --policy " +
                     testing::sh((dir / "policy.toml").string());
  auto neither = testing::run(testing::quorate_command(base));
  EXPECT_EQ(neither.exit_code, 2) << neither.out;
  EXPECT_NE(neither.out.find("exactly one of --store"), std::string::npos) << neither.out;
  auto both = testing::run(testing::quorate_command(base + " --store x.db --quorum tcp://127.0.0.1:1"));
  EXPECT_EQ(both.exit_code, 2) << both.out;
  auto keyless = testing::run(testing::quorate_command(base + " --quorum tcp://127.0.0.1:1"));
  EXPECT_EQ(keyless.exit_code, 2) << keyless.out;
  EXPECT_NE(keyless.out.find("--quorum-key"), std::string::npos) << keyless.out;
}

}  // namespace
}  // namespace quorate::gate_test
