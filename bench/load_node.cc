// load_node: a wire-level rebuild node for load tests, and the decision watcher/checker of the scale benchmark.
// Not a mode of `quorate node` (it builds nothing): a bench program only. See bench/README.md.
//
//   load_node keys  --dir D                     Ed25519 key (D/node.key.pem, .pub.pem) and CURVE pair (D/node.curve.*)
//   load_node serve --dir D --id ID --subjects N [--rogue] [--rate R] [--publish EP] [--control EP]
//                   --allow CURVE_PUB ... [--start-file F] [--heartbeat-ms MS] [--history-batch N]
//   load_node watch --decisions EP --query EP --server-key K --dir D --subjects N --nodes N --rogue ID
//                   --out FILE [--query-interval-ms MS]
//   load_node check --query EP --server-key K --dir D --subjects N --nodes N --rogue ID --out FILE
//
// serve: pre-signs one real DSSE envelope (in-toto statement, Ed25519, the attest module) per subject before
// the clock starts, binds PUB + ROUTER with CURVE (the wire module, as `quorate node` does), waits for
// --start-file to exist, then publishes sequence s = subject s-1 at --rate per second (0: burst), answers
// history requests and sends heartbeats. Its state (incarnation lineage and the highest sequence it may have
// published) is saved atomically in D/state.json before anything beyond it is published, so a SIGKILLed node
// resumes its numbering and serves everything it ever published. --rogue signs another image digest for the
// same subjects. Ed25519 signatures are deterministic, so a restarted node serves the same bytes.
//
// watch: subscribes to the verifier's decisions and queries it while the run goes on; writes (atomically,
// every 500 ms and at SIGTERM) how many subjects are decided right, the last decision time, revisions that
// did not increase per subject, and query latency percentiles; at SIGTERM also every query's send time and
// latency, and when its query connection went down and came up (wire::ConnectionMonitor). Like
// wire::QueryClient, it sends a query again when its connection went down unanswered and came back.
// check: asks the verifier about every subject once and writes right/wrong/missing.
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"
#include "quorate/wire/socket.h"
#include "tests/support/sample_build_result.h"

namespace {

using namespace quorate;
namespace pb = wire::pb;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

std::atomic<bool> load_stop{false};
void load_on_signal(int) { load_stop = true; }

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "load_node: %s\n", what.c_str());
  std::exit(2);
}
template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r.ok()) die(what + ": " + r.status().to_string());
  return std::move(*r);
}
void must(const Status& s, const std::string& what) {
  if (!s.ok()) die(what + ": " + s.to_string());
}

// ---- the subjects: one commit each; honest nodes attest image "good-S", the rogue "rogue-S" ----------------

const char* kLoadRepo = "file:///srv/git/scale.git";
std::string load_commit(size_t s) { return sha256_hex("scale commit " + std::to_string(s)).substr(0, 40); }
std::string load_image_digest(size_t s, bool rogue) {
  return sha256_digest(std::string("manifest ") + (rogue ? "rogue-" : "good-") + std::to_string(s));
}
std::string load_build_result(size_t s, bool rogue) {
  quorate::testing::SampleBuild b;
  b.commit = load_commit(s);
  b.image = std::string(rogue ? "rogue-" : "good-") + std::to_string(s);
  b.manifest_digest = load_image_digest(s, rogue);
  b.repo = kLoadRepo;
  b.name = "example.org/scale";
  return quorate::testing::sample_build_result(b);
}

// ---- arguments: --name value pairs (repeatable), and flags -------------------------------------------------

struct LoadArgs {
  std::multimap<std::string, std::string> values;
  std::set<std::string> flags;
  std::string get(const std::string& k, const std::string& dflt = "") const {
    auto it = values.find(k);
    return it == values.end() ? dflt : it->second;
  }
  std::string need(const std::string& k) const {
    auto it = values.find(k);
    if (it == values.end()) die("missing --" + k);
    return it->second;
  }
  long num(const std::string& k, long dflt) const {
    auto v = get(k);
    if (v.empty()) return dflt;
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (*end != '\0' || n < 0) die("--" + k + " wants a non-negative integer, got '" + v + "'");
    return n;
  }
  std::vector<std::string> all(const std::string& k) const {
    std::vector<std::string> out;
    auto [a, b] = values.equal_range(k);
    for (auto it = a; it != b; ++it) out.push_back(it->second);
    return out;
  }
};

LoadArgs parse_load_args(int argc, char** argv, const std::set<std::string>& flag_names) {
  LoadArgs a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) die("unexpected argument '" + k + "'");
    k = k.substr(2);
    if (flag_names.count(k)) {
      a.flags.insert(k);
      continue;
    }
    if (i + 1 >= argc) die("--" + k + " wants a value");
    a.values.emplace(k, argv[++i]);
  }
  return a;
}

// ---- keys --------------------------------------------------------------------------------------------------

int load_keys(const LoadArgs& a) {
  fs::path dir = a.need("dir");
  fs::create_directories(dir);
  if (!fs::exists(dir / "node.key.pem")) {
    must(attest::write_key_pair(dir / "node.key.pem", must(attest::generate_key(attest::KeyType::kEd25519), "key")),
         "write key");
  }
  if (!fs::exists(dir / "node.curve.key")) {
    must(wire::write_curve_keypair(must(wire::generate_curve_keypair(), "curve key"), dir / "node"), "write curve key");
  }
  std::printf("%s\n", must(wire::read_curve_public_key(dir / "node.curve.pub"), "curve pub").c_str());
  return 0;
}

// ---- serve -------------------------------------------------------------------------------------------------

struct LoadIncarnation {
  uint64_t id = 0, first_sequence = 0;
};

struct LoadState {
  std::string node_id;
  uint64_t reserved = 0;  // the highest sequence this node may have published (durable before publishing)
  std::vector<LoadIncarnation> lineage;

  std::string to_json() const {
    nlohmann::json j = {{"node_id", node_id}, {"reserved", reserved}, {"lineage", nlohmann::json::array()}};
    for (const auto& i : lineage) j["lineage"].push_back({{"id", i.id}, {"first_sequence", i.first_sequence}});
    return j.dump() + "\n";
  }
};

LoadState load_state(const fs::path& path, const std::string& node_id) {
  LoadState st;
  st.node_id = node_id;
  if (!fs::exists(path)) return st;
  auto j = nlohmann::json::parse(must(read_file(path), "read state"), nullptr, false);
  if (j.is_discarded() || !j.is_object()) die(path.string() + ": not a JSON object");
  if (j.value("node_id", "") != node_id) die(path.string() + ": state of node '" + j.value("node_id", "") + "'");
  st.reserved = j.value("reserved", uint64_t{0});
  for (const auto& i : j.value("lineage", nlohmann::json::array())) {
    st.lineage.push_back({i.value("id", uint64_t{0}), i.value("first_sequence", uint64_t{0})});
  }
  return st;
}

struct LoadNode {
  std::string id;
  bool rogue = false;
  fs::path state_path;
  LoadState state;
  uint64_t incarnation = 0;
  std::vector<std::string> envelopes;  // sequence s -> envelopes[s - 1]
  uint64_t next = 1;                   // next sequence to publish live
  uint64_t available = 0;              // newest sequence history answers and heartbeats announce
  size_t history_batch = 256;
  wire::Limits limits;
  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Socket> pub, router;
  uint64_t sent_live = 0, history_served = 0, history_requests = 0;

  void save() { must(write_file_atomic(state_path, state.to_json()), "save state"); }

  void bind(const wire::TransportConfig& transport, const std::string& pub_ep, const std::string& control_ep) {
    auto security = must(wire::make_server_security(transport), "server security");
    ctx = must(wire::Context::create(), "context");
    wire::SocketOptions opts;
    opts.max_message_bytes = static_cast<int64_t>(limits.largest()) * 2;
    pub =
        std::make_unique<wire::Socket>(must(wire::Socket::server(*ctx, wire::SocketType::kPub, security, opts), "pub"));
    router = std::make_unique<wire::Socket>(
        must(wire::Socket::server(*ctx, wire::SocketType::kRouter, security, opts), "router"));
    std::string p = must(pub->bind(pub_ep), "bind " + pub_ep);
    std::string c = must(router->bind(control_ep), "bind " + control_ep);
    std::printf("%s\n",
                nlohmann::json({{"event", "bound"}, {"node_id", id}, {"publish", p}, {"control", c}}).dump().c_str());
    std::fflush(stdout);
  }

  pb::AttestationMessage message(uint64_t seq) const {
    pb::AttestationMessage m;
    fill(m, seq);
    return m;
  }
  void fill(pb::AttestationMessage& m, uint64_t seq) const {
    m.set_node_id(id);
    m.set_sequence(seq);
    m.set_envelope(envelopes[seq - 1]);
    m.set_request_id("load-" + std::to_string(seq));
    m.set_incarnation(incarnation);
  }

  void heartbeat() {
    pb::Heartbeat hb;
    hb.set_node_id(id);
    hb.set_last_sequence(available);
    hb.set_unix_time(wall_ms() / 1000);
    hb.set_incarnation(incarnation);
    (void)pub->send({wire::heartbeat_topic(id), wire::encode_frame(wire::MessageType::kHeartbeat, hb)});
  }

  // Answers the history requests waiting (up to `wait_ms` for the first).
  void serve_history(int wait_ms) {
    for (;;) {
      auto got = router->recv(wait_ms);
      wait_ms = 0;
      if (!got.ok() || !got->has_value()) return;
      auto& frames = **got;
      if (frames.size() < 2) continue;
      pb::HistoryRequest req;
      if (!wire::decode_message(frames.back(), wire::MessageType::kHistoryRequest, limits, req).ok()) continue;
      ++history_requests;
      size_t count = req.max_count() == 0 ? history_batch : std::min<size_t>(req.max_count(), history_batch);
      pb::HistoryResponse resp;
      resp.set_node_id(id);
      resp.set_incarnation(incarnation);
      size_t budget = limits.max_history_bytes - 4096, used = 0;
      uint64_t seq = req.since_sequence() + 1;
      for (; seq <= available && static_cast<size_t>(resp.attestations_size()) < count; ++seq) {
        size_t size = envelopes[seq - 1].size() + id.size() + 96;
        if (used + size > budget && resp.attestations_size() > 0) break;
        used += size;
        fill(*resp.add_attestations(), seq);  // in place: a history response copies each envelope once
      }
      size_t first_lineage = state.lineage.size() > 64 ? state.lineage.size() - 64 : 0;
      for (size_t i = first_lineage; i < state.lineage.size(); ++i) {
        auto* x = resp.add_lineage();
        x->set_id(state.lineage[i].id);
        x->set_first_sequence(state.lineage[i].first_sequence);
      }
      history_served += static_cast<uint64_t>(resp.attestations_size());
      resp.set_last_sequence(available);
      resp.set_more(seq - 1 < available);
      wire::Frames out(frames.begin(), frames.end() - 1);
      out.push_back(wire::encode_frame(wire::MessageType::kHistoryResponse, resp));
      (void)router->send(out);
    }
  }
};

int load_serve(const LoadArgs& a) {
  LoadNode n;
  fs::path dir = a.need("dir");
  n.id = a.need("id");
  n.rogue = a.flags.count("rogue") > 0;
  size_t subjects = static_cast<size_t>(a.num("subjects", 0));
  if (subjects == 0) die("--subjects wants a positive number");
  long rate = a.num("rate", 0);
  int heartbeat_ms = static_cast<int>(a.num("heartbeat-ms", 500));
  n.history_batch = static_cast<size_t>(std::max(1L, a.num("history-batch", 256)));
  fs::path start_file = a.get("start-file");

  // Pre-sign everything before the clock starts.
  auto t_sign = SteadyClock::now();
  auto signer = must(attest::load_signer(dir / "node.key.pem"), "node key");
  n.envelopes.reserve(subjects);
  for (size_t s = 0; s < subjects; ++s) {
    n.envelopes.push_back(must(attest::attest_build_result(load_build_result(s, n.rogue), *signer, n.id), "sign"));
  }
  double sign_s = std::chrono::duration<double>(SteadyClock::now() - t_sign).count();

  // State: a new incarnation that begins after everything a previous run may have published.
  n.state_path = dir / "state.json";
  n.state = load_state(n.state_path, n.id);
  if (n.state.reserved > subjects)
    die("state says " + std::to_string(n.state.reserved) + " published, only " + std::to_string(subjects) +
        " subjects");
  do {
    if (::getrandom(&n.incarnation, sizeof n.incarnation, 0) != sizeof n.incarnation) die("getrandom failed");
  } while (n.incarnation == 0);
  n.state.lineage.push_back({n.incarnation, n.state.reserved + 1});
  n.save();
  n.available = n.state.reserved;
  n.next = n.state.reserved + 1;

  wire::TransportConfig transport;
  transport.curve_secret_key = dir / "node.curve.key";
  transport.allowed_clients = a.all("allow");
  transport.insecure = a.flags.count("insecure") > 0;
  n.bind(transport, a.get("publish", "tcp://127.0.0.1:*"), a.get("control", "tcp://127.0.0.1:*"));
  std::printf("%s\n", nlohmann::json({{"event", "ready"},
                                      {"node_id", n.id},
                                      {"subjects", subjects},
                                      {"resumed_at", n.state.reserved},
                                      {"incarnation", n.incarnation},
                                      {"sign_seconds", sign_s},
                                      {"envelope_bytes", n.envelopes[0].size()}})
                          .dump()
                          .c_str());
  std::fflush(stdout);

  auto next_heartbeat = SteadyClock::now();
  while (!load_stop && !start_file.empty() && !fs::exists(start_file)) {
    n.serve_history(20);
    if (SteadyClock::now() >= next_heartbeat) {
      n.heartbeat();
      next_heartbeat = SteadyClock::now() + std::chrono::milliseconds(heartbeat_ms);
    }
  }
  auto t0 = SteadyClock::now();
  uint64_t first = n.next;
  bool announced = n.next > subjects;
  const uint64_t chunk = 256;
  while (!load_stop) {
    bool may_publish = n.next <= subjects;
    if (may_publish && rate > 0) {
      double elapsed = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      may_publish = static_cast<double>(n.next - first) < elapsed * static_cast<double>(rate);
    }
    if (may_publish) {
      if (n.next > n.state.reserved) {  // durable before published
        n.state.reserved = std::min<uint64_t>(subjects, n.next + chunk - 1);
        n.save();
      }
      auto m = n.message(n.next);
      (void)n.pub->send({wire::attestation_topic(n.id), wire::encode_frame(wire::MessageType::kAttestation, m)});
      n.available = std::max(n.available, n.next);
      ++n.next;
      ++n.sent_live;
      if (n.sent_live % 32 == 0) n.serve_history(0);
    } else {
      // Nothing to publish now: a history request wakes the wait at once, so it only has to end when the next
      // attestation is due (paced), for the next heartbeat, and every 100 ms for a stop. 50 nodes waking every
      // 10 ms (1 ms when paced) took 5% of the machine the verifier is measured on.
      auto wake = next_heartbeat;
      if (rate > 0 && n.next <= subjects) {
        const auto due = t0 + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(
                                  static_cast<double>(n.next - first) / static_cast<double>(rate)));
        wake = std::min(wake, due);
      }
      const auto wait_us = std::chrono::duration_cast<std::chrono::microseconds>(wake - SteadyClock::now()).count();
      n.serve_history(static_cast<int>(std::clamp<int64_t>((wait_us + 999) / 1000, 1, 100)));
    }
    if (!announced && n.next > subjects) {
      announced = true;
      std::printf("%s\n", nlohmann::json({{"event", "published_all"},
                                          {"node_id", n.id},
                                          {"ms", wall_ms()},
                                          {"sent_live", n.sent_live},
                                          {"seconds", std::chrono::duration<double>(SteadyClock::now() - t0).count()}})
                              .dump()
                              .c_str());
      std::fflush(stdout);
    }
    if (SteadyClock::now() >= next_heartbeat) {
      n.heartbeat();
      next_heartbeat = SteadyClock::now() + std::chrono::milliseconds(heartbeat_ms);
    }
  }
  std::printf("%s\n", nlohmann::json({{"event", "stopped"},
                                      {"node_id", n.id},
                                      {"sent_live", n.sent_live},
                                      {"history_served", n.history_served},
                                      {"history_requests", n.history_requests},
                                      {"available", n.available}})
                          .dump()
                          .c_str());
  std::fflush(stdout);
  n.pub.reset();
  n.router.reset();
  return 0;
}

// ---- watch and check ---------------------------------------------------------------------------------------

struct LoadExpect {
  size_t subjects = 0, nodes = 0;
  std::string rogue;
  std::map<std::string, size_t> index;  // commit -> subject
  void init() {
    for (size_t s = 0; s < subjects; ++s) index[load_commit(s)] = s;
  }
  // "right": accepted with the honest digest, every honest node agreeing, the rogue a dissenter with its
  // digest, nobody missing. "partial": not (yet) every vote. "wrong": anything else.
  enum class Verdict { kRight, kPartial, kWrong };
  Verdict judge(const pb::Decision& d, size_t s) const {
    if (!d.accepted())
      return Verdict::kPartial;  // not (yet) k votes for one digest; final rejections show up
                                 // as partial in `check`
    bool rogue_dissents = false;
    for (const auto& x : d.dissenters()) {
      if (x.node_id() == rogue && x.digest() == load_image_digest(s, true))
        rogue_dissents = true;
      else
        return Verdict::kWrong;  // an honest node dissenting, or the rogue with another digest
    }
    for (const auto& x : d.agreeing()) {
      if (x == rogue) return Verdict::kWrong;
    }
    if (d.void_nodes_size() > 0) return Verdict::kWrong;
    if (d.digest() != load_image_digest(s, false)) return Verdict::kWrong;
    size_t honest = rogue.empty() ? nodes : nodes - 1;
    if (static_cast<size_t>(d.agreeing_size()) == honest && (rogue.empty() || rogue_dissents) &&
        d.missing_size() == 0) {
      return Verdict::kRight;
    }
    return Verdict::kPartial;
  }
};

struct LoadClient {
  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Socket> sub, dealer;
  wire::Limits limits;
  void open(const LoadArgs& a, bool subscribe) {
    wire::TransportConfig transport;
    transport.insecure = a.flags.count("insecure") > 0;
    transport.curve_secret_key = fs::path(a.need("dir")) / "node.curve.key";
    auto cs = must(wire::make_client_security(transport, transport.insecure ? "" : a.need("server-key")), "client");
    ctx = must(wire::Context::create(), "context");
    wire::SocketOptions opts;
    opts.max_message_bytes = static_cast<int64_t>(limits.largest()) * 2;
    opts.reconnect_ivl_max_ms = 200;  // an attentive subscriber: back within 200 ms of a verifier restart
    dealer =
        std::make_unique<wire::Socket>(must(wire::Socket::client(*ctx, wire::SocketType::kDealer, cs, opts), "dealer"));
    must(dealer->connect(a.need("query")), "connect query");
    if (subscribe) {
      sub = std::make_unique<wire::Socket>(must(wire::Socket::client(*ctx, wire::SocketType::kSub, cs, opts), "sub"));
      must(sub->subscribe("dec."), "subscribe");
      must(sub->connect(a.need("decisions")), "connect decisions");
    }
  }
  void send_query(const std::string& request_id, const std::string& commit) {
    pb::Query q;
    q.set_request_id(request_id);
    q.mutable_subject()->set_commit(commit);
    (void)dealer->send({wire::encode_frame(wire::MessageType::kQuery, q)});
  }
  std::optional<pb::Answer> answer(int wait_ms) {
    auto got = dealer->recv(wait_ms);
    if (!got.ok() || !got->has_value() || (*got)->empty()) return std::nullopt;
    pb::Answer ans;
    if (!wire::decode_message((**got).back(), wire::MessageType::kAnswer, limits, ans).ok()) return std::nullopt;
    return ans;
  }
  ~LoadClient() {
    sub.reset();
    dealer.reset();
  }
};

double load_percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

LoadExpect load_expect(const LoadArgs& a) {
  LoadExpect e;
  e.subjects = static_cast<size_t>(a.num("subjects", 0));
  e.nodes = static_cast<size_t>(a.num("nodes", 0));
  e.rogue = a.get("rogue");
  if (e.subjects == 0 || e.nodes == 0) die("--subjects and --nodes want positive numbers");
  e.init();
  return e;
}

// The connect and disconnect events of the watcher's query socket (wire::ConnectionMonitor), read without
// waiting: each (wall ms when read, "up" when a handshake succeeded or "down" when the peer went away). The
// watcher reads them at least every 5 ms.
struct ConnectionEvents {
  std::vector<std::pair<int64_t, std::string>> events;
  std::unique_ptr<wire::ConnectionMonitor> monitor;
  ConnectionEvents(wire::Context& ctx, wire::Socket& socket)
      : monitor(must(wire::ConnectionMonitor::watch(ctx, socket), "socket monitor")) {}
  // Records the events since the last call and returns them.
  std::vector<wire::ConnectionMonitor::Event> drain() {
    auto taken = monitor->take();
    for (auto e : taken) events.emplace_back(wall_ms(), e == wire::ConnectionMonitor::Event::kUp ? "up" : "down");
    return taken;
  }
};

int load_watch(const LoadArgs& a) {
  LoadExpect e = load_expect(a);
  fs::path out = a.need("out");
  int query_interval_ms = static_cast<int>(a.num("query-interval-ms", 20));
  LoadClient c;
  c.open(a, true);
  // When the query connection came up and went down (wall ms): scale_bench.py tells the time a query waited
  // for this client to reconnect to a restarted verifier from the time the verifier took to answer it.
  ConnectionEvents connection(*c.ctx, *c.dealer);
  struct Seen {
    uint64_t revision = 0;
    std::map<uint64_t, std::string> content;  // revision -> what it said (subscription and answers)
    LoadExpect::Verdict verdict = LoadExpect::Verdict::kPartial;
    bool any = false;
  };
  std::vector<Seen> seen(e.subjects);
  uint64_t decisions = 0, not_increasing = 0, wrong_seen = 0, answers = 0, query_timeouts = 0, conflicts = 0;
  nlohmann::json examples = nlohmann::json::array();
  int64_t last_decision_ms = 0, first_decision_ms = 0;
  std::vector<double> latencies;
  std::vector<std::pair<int64_t, double>> samples;  // (wall ms when sent, latency ms), for the final report
  struct Pending {
    SteadyClock::time_point sent;
    int64_t sent_wall_ms;
    std::string commit;
    bool lost = false;  // its connection went down before the answer came: sent again when one is up
  };
  std::map<std::string, Pending> pending;
  size_t cursor = 0;
  uint64_t query_id = 0;
  auto next_query = SteadyClock::now(), next_write = SteadyClock::now(), last_sub_message = SteadyClock::now();

  auto right_count = [&] {
    size_t r = 0;
    for (const auto& s : seen) r += s.verdict == LoadExpect::Verdict::kRight;
    return r;
  };
  size_t right_cached = 0;
  auto write = [&](bool final_write) {
    size_t right = right_cached = right_count();
    nlohmann::json j = {{"decisions_seen", decisions},
                        {"subjects_right", right},
                        {"subjects", e.subjects},
                        {"wrong_seen", wrong_seen},
                        {"revisions_not_increasing", not_increasing},
                        {"revision_conflicts", conflicts},
                        {"examples", examples},
                        {"first_decision_ms", first_decision_ms},
                        {"last_decision_ms", last_decision_ms},
                        {"queries_answered", answers},
                        {"query_timeouts", query_timeouts},
                        {"query_p50_ms", load_percentile(latencies, 0.5)},
                        {"query_p99_ms", load_percentile(latencies, 0.99)},
                        {"query_max_ms", load_percentile(latencies, 1.0)}};
    // Every query's send time and latency, once at the end: scale_bench.py splits them by the verifier's downtime.
    if (final_write) {
      j["query_samples"] = samples;
      j["query_connection_events"] = connection.events;
    }
    (void)write_file_atomic(out, j.dump() + "\n");
  };
  auto note = [&](const pb::Decision& d, bool from_subscription) {
    auto it = e.index.find(d.subject().commit());
    if (it == e.index.end()) return;
    auto& s = seen[it->second];
    auto v = e.judge(d, it->second);
    if (v == LoadExpect::Verdict::kWrong) {
      ++wrong_seen;
      if (examples.size() < 10) examples.push_back({{"wrong", d.subject().commit()}, {"reason", d.reason()}});
    }
    // One revision number, one content: a decision is its revision (docs/wire.md), whichever way it came.
    // The votes it counts (a query answer may word the rest differently from the publication).
    std::vector<std::string> parts(d.agreeing().begin(), d.agreeing().end());
    for (const auto& x : d.dissenters()) parts.push_back("!" + x.node_id() + "=" + x.digest());
    for (const auto& x : d.void_nodes()) parts.push_back("~" + x);
    std::sort(parts.begin(), parts.end());
    std::string text = std::string(d.accepted() ? "A " : "R ") + d.digest();
    for (const auto& x : parts) text += " " + x;
    auto [slot, fresh] = s.content.emplace(d.revision(), text);
    if (!fresh && slot->second != text) {
      ++conflicts;
      if (examples.size() < 10) {
        examples.push_back({{"commit", d.subject().commit()},
                            {"revision", d.revision()},
                            {"conflict", "same revision, other content"},
                            {"agreeing", d.agreeing_size()}});
      }
    }
    if (from_subscription) {
      if (s.any && d.revision() <= s.revision) {
        ++not_increasing;
        if (examples.size() < 10) {
          examples.push_back({{"commit", d.subject().commit()}, {"revision", d.revision()}, {"after", s.revision}});
        }
      }
      s.any = true;
      s.revision = std::max(s.revision, d.revision());
    }
    s.verdict = v;
  };

  while (!load_stop) {
    // As wire::QueryClient does: a query whose connection went down unanswered (a verifier killed after it took
    // the query) is sent again once a connection is up; its latency still counts from its first send.
    for (auto event : connection.drain()) {
      for (auto& [rid, p] : pending) {
        if (event == wire::ConnectionMonitor::Event::kDown) {
          p.lost = true;
        } else if (p.lost) {
          p.lost = false;
          c.send_query(rid, p.commit);
        }
      }
    }
    std::vector<wire::Socket*> socks{c.sub.get(), c.dealer.get()};
    auto ready = wire::poll_readable(socks, 5);
    if (ready.ok() && (*ready)[0]) {
      for (int i = 0; i < 1000; ++i) {
        auto got = c.sub->recv(0);
        if (!got.ok() || !got->has_value()) break;
        pb::Decision d;
        if ((*got)->size() != 2 || !wire::decode_message((**got)[1], wire::MessageType::kDecision, c.limits, d).ok())
          continue;
        ++decisions;
        last_sub_message = SteadyClock::now();
        last_decision_ms = wall_ms();
        if (first_decision_ms == 0) first_decision_ms = last_decision_ms;
        note(d, true);
      }
    }
    if (ready.ok() && (*ready)[1]) {
      while (auto ans = c.answer(0)) {
        auto it = pending.find(ans->request_id());
        if (it == pending.end()) continue;
        latencies.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - it->second.sent).count());
        samples.emplace_back(it->second.sent_wall_ms, latencies.back());
        pending.erase(it);
        ++answers;
        for (const auto& d : ans->decisions()) note(d, false);
      }
    }
    auto now = SteadyClock::now();
    for (auto it = pending.begin(); it != pending.end();) {  // lost to a verifier restart
      if (now - it->second.sent > std::chrono::seconds(10)) {
        ++query_timeouts;
        latencies.push_back(10000.0);
        samples.emplace_back(it->second.sent_wall_ms, 10000.0);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    // While decisions flow, one query every interval (the latency sample); when the subscription has been
    // quiet for a second, a sweep of the subjects not yet right (what the subscription missed, e.g. while it
    // reconnected to a restarted verifier).
    bool quiet = now - last_sub_message > std::chrono::seconds(1) && right_cached < e.subjects;
    if ((now >= next_query && pending.size() < 4) || (quiet && pending.size() < 32)) {
      // Round robin over the subjects not yet right, so the answers also fill what the subscription missed.
      for (size_t k = 0; k < e.subjects; ++k) {
        size_t s = (cursor + k) % e.subjects;
        if (seen[s].verdict != LoadExpect::Verdict::kRight || k + 1 == e.subjects) {
          std::string rid = "w" + std::to_string(++query_id);
          pending[rid] = {now, wall_ms(), load_commit(s)};
          c.send_query(rid, load_commit(s));
          cursor = s + 1;
          break;
        }
      }
      next_query = now + std::chrono::milliseconds(query_interval_ms);
    }
    if (now >= next_write) {
      write(false);
      next_write = now + std::chrono::milliseconds(500);
    }
  }
  write(true);
  return 0;
}

int load_check(const LoadArgs& a) {
  LoadExpect e = load_expect(a);
  LoadClient c;
  c.open(a, false);
  int timeout_s = static_cast<int>(a.num("timeout", 60));
  std::vector<std::optional<pb::Decision>> got(e.subjects);
  std::map<std::string, size_t> pending;
  size_t next = 0;
  auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_s);
  while (SteadyClock::now() < deadline && (next < e.subjects || !pending.empty())) {
    while (next < e.subjects && pending.size() < 64) {
      std::string rid = "c" + std::to_string(next);
      pending[rid] = next;
      c.send_query(rid, load_commit(next++));
    }
    auto ans = c.answer(1000);
    if (!ans) {
      // Resend what is outstanding (the verifier may have been restarting).
      for (const auto& [rid, s] : pending) c.send_query(rid, load_commit(s));
      continue;
    }
    auto it = pending.find(ans->request_id());
    if (it == pending.end()) continue;
    if (ans->decisions_size() > 0) got[it->second] = ans->decisions(0);
    pending.erase(it);
  }
  size_t right = 0, wrong = 0, partial = 0, missing = 0, rejected = 0, dissent = 0;
  uint64_t max_revision = 0;
  nlohmann::json examples = nlohmann::json::array();
  for (size_t s = 0; s < e.subjects; ++s) {
    if (!got[s]) {
      ++missing;
      continue;
    }
    const auto& d = *got[s];
    max_revision = std::max(max_revision, d.revision());
    rejected += !d.accepted();
    for (const auto& x : d.dissenters()) dissent += x.node_id() == e.rogue;
    switch (e.judge(d, s)) {
      case LoadExpect::Verdict::kRight:
        ++right;
        break;
      case LoadExpect::Verdict::kPartial:
        ++partial;
        if (examples.size() < 5)
          examples.push_back({{"partial", d.subject().commit()},
                              {"reason", d.reason()},
                              {"agreeing", d.agreeing_size()},
                              {"missing", d.missing_size()}});
        break;
      case LoadExpect::Verdict::kWrong:
        ++wrong;
        if (examples.size() < 5) examples.push_back({{"wrong", d.subject().commit()}, {"reason", d.reason()}});
        break;
    }
  }
  nlohmann::json j = {{"subjects", e.subjects},
                      {"right", right},
                      {"wrong", wrong},
                      {"partial", partial},
                      {"missing", missing},
                      {"rejected", rejected},
                      {"rogue_dissents", dissent},
                      {"max_revision", max_revision},
                      {"unanswered", pending.size()},
                      {"examples", examples}};
  must(write_file_atomic(a.need("out"), j.dump() + "\n"), "write " + a.need("out"));
  std::printf("%s\n", j.dump().c_str());
  return wrong == 0 && missing == 0 && partial == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: load_node keys|serve|watch|check --help in bench/README.md");
  ::signal(SIGTERM, load_on_signal);
  ::signal(SIGINT, load_on_signal);
  ::signal(SIGPIPE, SIG_IGN);
  std::string mode = argv[1];
  // --rogue is a flag of serve, the rogue's node id in watch and check.
  LoadArgs a = parse_load_args(
      argc, argv, mode == "serve" ? std::set<std::string>{"rogue", "insecure"} : std::set<std::string>{"insecure"});
  if (mode == "keys") return load_keys(a);
  if (mode == "serve") return load_serve(a);
  if (mode == "watch") return load_watch(a);
  if (mode == "check") return load_check(a);
  die("unknown mode '" + mode + "'");
}
