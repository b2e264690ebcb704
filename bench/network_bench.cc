// network_bench: N nodes publish M pre-built signed attestations each to one verifier over loopback TCP.
// Reports attestations/s ingested (verified + stored) and the time from the last publish to the last decision.
//
// Everything on the verifier side is production code: the VerifierDaemon, the quorum store and engine, and
// attestation verification through the policy's roster (open_quorum_judge). The attestations are real DSSE
// envelopes (in-toto/SLSA statements, Ed25519) signed by the attest module from synthetic build results.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <openssl/crypto.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/core/sha256.h"
#include "quorate/quorumd/quorum_judge.h"
#include "quorate/quorumd/verifier_daemon.h"
#include "quorate/wire/socket.h"
#include "tests/support/sample_build_result.h"

namespace {

using namespace quorate;
namespace pb = wire::pb;
using SteadyClock = std::chrono::steady_clock;

double seconds_since(SteadyClock::time_point t0, SteadyClock::time_point t) {
  return std::chrono::duration<double>(t - t0).count();
}

std::string commit_of(int i) { return sha256_hex("commit " + std::to_string(i)).substr(0, 40); }

// A build result as `quorate build --result-out` writes it (docs/build-result.md), one per subject key.
std::string build_result(int subject) {
  quorate::testing::SampleBuild b;
  b.commit = commit_of(subject);
  b.image = "subject " + std::to_string(subject);
  return quorate::testing::sample_build_result(b);
}

// A node as the verifier sees one: PUB + ROUTER, history served from memory, live publishing at full speed.
struct BenchNode {
  std::string id;
  std::vector<pb::AttestationMessage> messages;
  std::unique_ptr<wire::Context> ctx = wire::Context::create().value();
  std::unique_ptr<wire::Socket> pub, router;
  std::string pub_ep, router_ep;
  std::atomic<size_t> published{0};
  SteadyClock::time_point last_publish;

  void bind() {
    wire::ServerSecurity s;
    s.transport = wire::Transport::kInsecure;
    pub = std::make_unique<wire::Socket>(wire::Socket::server(*ctx, wire::SocketType::kPub, s).value());
    router = std::make_unique<wire::Socket>(wire::Socket::server(*ctx, wire::SocketType::kRouter, s).value());
    pub_ep = pub->bind("tcp://127.0.0.1:*").value();
    router_ep = router->bind("tcp://127.0.0.1:*").value();
  }
  void serve_history() {
    for (;;) {
      auto got = router->recv(0);
      if (!got.ok() || !got->has_value() || (*got)->size() != 2) return;
      pb::HistoryRequest req;
      if (!wire::decode_message((**got)[1], wire::MessageType::kHistoryRequest, wire::Limits{}, req).ok()) continue;
      pb::HistoryResponse resp;
      resp.set_node_id(id);
      size_t upto = published.load();
      for (size_t i = req.since_sequence(); i < upto && resp.attestations_size() < 256; ++i) {
        *resp.add_attestations() = messages[i];
      }
      uint64_t sent = req.since_sequence() + static_cast<uint64_t>(resp.attestations_size());
      resp.set_last_sequence(upto);
      resp.set_more(sent < upto);
      (void)router->send({(**got)[0], wire::encode_frame(wire::MessageType::kHistoryResponse, resp)});
    }
  }
  void publish_all() {
    for (size_t i = 0; i < messages.size(); ++i) {
      (void)pub->send({wire::attestation_topic(id), wire::encode_frame(wire::MessageType::kAttestation, messages[i])});
      published = i + 1;
      if (i % 64 == 0) serve_history();
    }
    last_publish = SteadyClock::now();
  }
  ~BenchNode() {
    pub.reset();
    router.reset();
  }
};

}  // namespace

int main(int argc, char** argv) {
  int nodes = argc > 1 ? std::atoi(argv[1]) : 5;
  int count = argc > 2 ? std::atoi(argv[2]) : 10000;
  char templ[] = "/tmp/quorate-network-bench.XXXXXX";
  std::filesystem::path dir = ::mkdtemp(templ);

  // Pre-built attestations: one key per node, one attestation per node per subject key.
  std::vector<std::unique_ptr<BenchNode>> bench_nodes;
  std::ofstream policy(dir / "policy.toml");
  policy << "threshold = " << nodes << "\n";
  auto t_sign = SteadyClock::now();
  std::vector<std::string> results;
  for (int s = 0; s < count; ++s) results.push_back(build_result(s));
  for (int n = 0; n < nodes; ++n) {
    auto node = std::make_unique<BenchNode>();
    node->id = "node-" + std::to_string(n);
    auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
    if (!attest::write_key_pair(dir / (node->id + ".pem"), pair).ok()) return 2;
    policy << "[[nodes]]\nid = \"" << node->id << "\"\npublic_key = \"" << node->id << ".pem.pub.pem\"\n";
    auto signer = attest::signer_from_pem(pair.private_pem).value();
    for (int s = 0; s < count; ++s) {
      pb::AttestationMessage m;
      m.set_node_id(node->id);
      m.set_sequence(static_cast<uint64_t>(s + 1));
      m.set_envelope(attest::attest_build_result(results[static_cast<size_t>(s)], *signer, node->id).value());
      node->messages.push_back(std::move(m));
    }
    node->bind();
    bench_nodes.push_back(std::move(node));
  }
  policy.close();
  std::printf("prepared %d x %d signed attestations in %.2f s (envelope %zu bytes)\n", nodes, count,
              seconds_since(t_sign, SteadyClock::now()), bench_nodes[0]->messages[0].envelope().size());

  // The verifier: real daemon, real store, engine and roster verification, k = nodes.
  quorum::VerifierConfig config;
  config.policy = dir / "policy.toml";
  config.data_dir = dir / "verifier";
  config.transport.insecure = true;
  for (auto& n : bench_nodes) config.nodes.push_back({n->id, n->pub_ep, n->router_ep, ""});
  auto judge = quorum::open_quorum_judge(config, [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  });
  if (!judge.ok()) {
    std::fprintf(stderr, "%s\n", judge.status().to_string().c_str());
    return 2;
  }
  std::ostringstream log_text;
  wire::EventLog log(
      log_text, [] { return int64_t{0}; }, "verifier", wire::EventLog::Level::kError);
  auto verifier = quorum::VerifierDaemon::open(config, std::move(*judge), log, {}).value();
  std::atomic<bool> stop{false};
  std::thread verifier_thread([&] { (void)verifier->run(stop); });

  // A decision subscriber: the time the last subject key reached its final (accepted) decision.
  auto sub_ctx = wire::Context::create().value();
  wire::ClientSecurity cs;
  cs.transport = wire::Transport::kInsecure;
  auto sub = wire::Socket::client(*sub_ctx, wire::SocketType::kSub, cs).value();
  (void)sub.subscribe("dec.");
  (void)sub.connect(verifier->publish_endpoint());

  // Let the verifier's first history requests be answered (empty) and the subscriptions settle.
  for (int i = 0; i < 50; ++i) {
    for (auto& n : bench_nodes) n->serve_history();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  auto t0 = SteadyClock::now();
  std::vector<std::thread> publishers;
  for (auto& n : bench_nodes) publishers.emplace_back([&n] { n->publish_all(); });
  std::set<std::string> accepted;
  SteadyClock::time_point t_last_decision = t0, t_ingested = t0;
  auto deadline = t0 + std::chrono::minutes(10);
  bool all_ingested = false;
  while (SteadyClock::now() < deadline && (accepted.size() < static_cast<size_t>(count) || !all_ingested)) {
    for (auto& n : bench_nodes) {
      if (n->published == n->messages.size()) n->serve_history();
    }
    auto got = sub.recv(5);
    if (got.ok() && got->has_value() && (*got)->size() == 2) {
      pb::Decision d;
      if (wire::decode_message((**got)[1], wire::MessageType::kDecision, wire::Limits{}, d).ok() && d.accepted()) {
        accepted.insert(d.subject().commit());
        t_last_decision = SteadyClock::now();
      }
    }
    if (!all_ingested && verifier->counters().received >= static_cast<uint64_t>(nodes) * count) {
      all_ingested = true;
      t_ingested = SteadyClock::now();
    }
  }
  for (auto& t : publishers) t.join();
  auto t_last_publish = t0;
  for (auto& n : bench_nodes) t_last_publish = std::max(t_last_publish, n->last_publish);
  stop = true;
  verifier_thread.join();
  auto c = verifier->counters();

  double total = static_cast<double>(nodes) * count;
  std::printf("nodes=%d attestations/node=%d total=%.0f\n", nodes, count, total);
  std::printf("publish: %.2f s (%.0f attestations/s offered)\n", seconds_since(t0, t_last_publish),
              total / seconds_since(t0, t_last_publish));
  std::printf("ingested (verified + stored): %llu in %.2f s = %.0f attestations/s\n",
              static_cast<unsigned long long>(c.stored), seconds_since(t0, t_ingested),
              c.stored / seconds_since(t0, t_ingested));
  std::printf("accepted subject keys: %zu of %d; decisions published: %llu\n", accepted.size(), count,
              static_cast<unsigned long long>(c.decisions_published));
  std::printf("last publish -> last decision: %.3f s\n", seconds_since(t_last_publish, t_last_decision));
  std::printf("duplicates=%llu rejected=%llu dropped=%llu\n", static_cast<unsigned long long>(c.duplicates),
              static_cast<unsigned long long>(c.rejected), static_cast<unsigned long long>(c.dropped));
  verifier.reset();
  bench_nodes.clear();
  std::filesystem::remove_all(dir);
  return accepted.size() == static_cast<size_t>(count) ? 0 : 1;
}
