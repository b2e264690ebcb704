// The verifier daemon in-process against real node daemons (fake rebuilder, fake judge): history
// catch-up, restarts of nodes and of the verifier, garbage, oversized and misattributed attestations,
// decisions published on change and answered on query.
#include "quorate/quorumd/verifier_daemon.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "e2e/scripted_node.h"
#include "quorate/node/daemon.h"
#include "quorate/sqlite/database.h"
#include "quorate/wire/socket.h"
#include "support/test_util.h"

namespace quorate {
namespace {

namespace pb = wire::pb;
using wire::MessageType;
using SteadyClock = std::chrono::steady_clock;

// "Envelopes" are JSON {node, repo, commit, recipe, digest}; a node's rebuilder may lie about its name
// (to test misattribution) or produce another digest (a rogue).
class FakeRebuilder : public node::Rebuilder {
 public:
  FakeRebuilder(std::string node, std::string digest, std::string claimed = {})
      : node_(std::move(node)), digest_(std::move(digest)), claimed_(claimed.empty() ? node_ : claimed) {}
  Result<node::RebuildOutput> rebuild(const wire::RebuildRequest& r, const std::atomic<bool>&) override {
    nlohmann::json j = {
        {"node", claimed_}, {"repo", r.repo}, {"commit", r.commit}, {"recipe", r.recipe_path}, {"digest", digest_}};
    return node::RebuildOutput{j.dump(), digest_};
  }

 private:
  std::string node_, digest_, claimed_;
};

// State shared across judge instances: the "store" survives a verifier restart, like the SQLite store.
struct FakeStore {
  std::set<std::string> envelopes;
  std::map<std::string, std::map<std::string, std::string>> votes;  // subject -> node -> digest
  std::map<std::string, pb::SubjectKey> subjects;
};

class FakeJudge : public quorum::Judge {
 public:
  FakeJudge(std::shared_ptr<FakeStore> store, std::set<std::string> roster, size_t k)
      : store_(std::move(store)), roster_(std::move(roster)), k_(k) {}

  Result<std::vector<Outcome>> ingest(const std::vector<Submission>& batch) override {
    std::vector<Outcome> out;
    for (const auto& s : batch) out.push_back(one(s.node_id, s.envelope));
    return out;
  }
  Outcome one(const std::string& node_id, const std::string& envelope) {
    Outcome o;
    auto j = nlohmann::json::parse(envelope, nullptr, false);
    if (j.is_discarded() || !j.contains("node")) {
      o.reason = "bad envelope";
      return o;
    }
    std::string signer = j["node"];
    if (!roster_.count(signer)) {
      o.reason = "unknown key";
      return o;
    }
    if (signer != node_id) {
      o.reason = "signer is not the publishing node";
      return o;
    }
    pb::SubjectKey s;
    s.set_repo(j["repo"]);
    s.set_commit(j["commit"]);
    s.set_recipe_path(j["recipe"]);
    o.subject = s;
    if (!store_->envelopes.insert(envelope).second) {
      o.kind = Outcome::Kind::kDuplicate;
      return o;
    }
    std::string id = s.SerializeAsString();
    store_->subjects[id] = s;
    store_->votes[id][node_id] = j["digest"];
    o.kind = Outcome::Kind::kStored;
    return o;
  }
  Result<pb::Decision> decide(const pb::SubjectKey& s) override {
    pb::Decision d;
    *d.mutable_subject() = s;
    std::map<std::string, std::vector<std::string>> by_digest;
    for (const auto& [node, digest] : store_->votes[s.SerializeAsString()]) by_digest[digest].push_back(node);
    std::string best;
    for (const auto& [digest, nodes] : by_digest) {
      if (best.empty() || nodes.size() > by_digest[best].size()) best = digest;
    }
    for (const auto& [digest, nodes] : by_digest) {
      for (const auto& n : nodes) {
        if (digest == best) {
          d.add_agreeing(n);
        } else {
          auto* x = d.add_dissenters();
          x->set_node_id(n);
          x->set_digest(digest);
        }
      }
    }
    d.set_accepted(!best.empty() && by_digest[best].size() >= k_ && by_digest.size() == 1);
    if (d.accepted()) d.set_digest(best);
    d.set_reason(d.accepted() ? "quorum" : "no quorum");
    return d;
  }
  Result<std::vector<pb::SubjectKey>> subjects() override {
    std::vector<pb::SubjectKey> out;
    for (const auto& [id, s] : store_->subjects) out.push_back(s);
    return out;
  }
  Result<std::vector<pb::Decision>> find_by_image(const std::string& digest) override {
    std::vector<pb::Decision> out;
    for (const auto& [id, votes] : store_->votes) {
      for (const auto& [n, d] : votes) {
        if (d == digest) {
          out.push_back(*decide(store_->subjects[id]));
          break;
        }
      }
    }
    return out;
  }
  Result<std::vector<pb::Decision>> find_by_subject(const pb::SubjectKey& s) override {
    std::vector<pb::Decision> out;
    for (const auto& [id, subject] : store_->subjects) {
      if (subject.commit() == s.commit()) out.push_back(*decide(subject));
    }
    return out;
  }

 private:
  std::shared_ptr<FakeStore> store_;
  std::set<std::string> roster_;
  size_t k_;
};

// The fake judge with Judge::check() held at a gate, call by call: the n-th call returns once the gate was
// opened n times (or after 20 s), so that a test can look at the verifier while a batch is in flight.
class GatedJudge : public FakeJudge {
 public:
  using FakeJudge::FakeJudge;
  std::unique_ptr<Checks> check(const std::vector<Submission>&) const override {
    const int nice = this_thread_nice();
    std::unique_lock<std::mutex> lock(mu_);
    check_nice_ = nice;
    const int call = ++calls_;
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return opened_ >= call; });
    return std::make_unique<Checks>();
  }
  Result<std::vector<Outcome>> commit(const std::vector<Submission>& batch, std::unique_ptr<Checks> checks) override {
    if (!checks) return Status::internal("commit without check");
    {
      std::lock_guard<std::mutex> lock(mu_);
      commit_nice_ = this_thread_nice();
      for (const auto& s : batch) committed_.push_back(nlohmann::json::parse(s.envelope).value("commit", ""));
    }
    return ingest(batch);
  }
  // The commits of the envelopes committed so far, in the order they were committed.
  std::vector<std::string> committed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return committed_;
  }
  // The nice values of the thread that ran check() and of the one that ran commit() last (-100: none yet).
  std::pair<int, int> nice_of_check_and_commit() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {check_nice_, commit_nice_};
  }
  void open_gate() {
    std::lock_guard<std::mutex> lock(mu_);
    ++opened_;
    cv_.notify_all();
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable int calls_ = 0;
  int opened_ = 0;
  std::vector<std::string> committed_;
  mutable int check_nice_ = -100;
  int commit_nice_ = -100;
  static int this_thread_nice() {
    errno = 0;
    const int n = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
    return errno == 0 ? n : -100;
  }
};

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

struct TestNode : Running<node::NodeDaemon> {
  node::NodeConfig config;
  TestNode(const std::filesystem::path& dir, const std::string& id, const std::string& digest,
           const std::string& claimed = {}, std::string pub = "tcp://127.0.0.1:*",
           std::string control = "tcp://127.0.0.1:*", std::optional<wire::TransportConfig> transport = {}) {
    config.node_id = id;
    config.data_dir = dir / id;
    config.transport.insecure = true;
    if (transport) config.transport = *transport;
    config.heartbeat_interval_ms = 100;
    config.publish_endpoint = pub;
    config.control_endpoint = control;
    auto d = node::NodeDaemon::open(config, std::make_unique<FakeRebuilder>(id, digest, claimed), log, {});
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    daemon = std::move(*d);
    start();
  }
  wire::FollowedNode followed() const {
    return {config.node_id, daemon->publish_endpoint(), daemon->control_endpoint(), ""};
  }
};

struct TestVerifier : Running<quorum::VerifierDaemon> {
  TestVerifier(const std::filesystem::path& dir, std::vector<wire::FollowedNode> nodes,
               std::shared_ptr<FakeStore> store, std::set<std::string> roster, size_t k, wire::Limits limits = {},
               std::optional<wire::TransportConfig> transport = {})
      : TestVerifier(dir, std::move(nodes), std::make_unique<FakeJudge>(store, roster, k), limits, transport) {}
  TestVerifier(const std::filesystem::path& dir, std::vector<wire::FollowedNode> nodes,
               std::unique_ptr<quorum::Judge> judge, wire::Limits limits = {},
               std::optional<wire::TransportConfig> transport = {}) {
    quorum::VerifierConfig c;
    c.data_dir = dir / "verifier";
    c.transport.insecure = true;
    if (transport) c.transport = *transport;
    c.nodes = std::move(nodes);
    c.limits = limits;
    c.history_timeout_ms = 500;
    auto d = quorum::VerifierDaemon::open(c, std::move(judge), log, {});
    EXPECT_TRUE(d.ok()) << d.status().to_string();
    daemon = std::move(*d);
    start();
  }
};

// A client of nodes (DEALER) and of the verifier (SUB + DEALER).
struct Client {
  std::unique_ptr<wire::Context> ctx = wire::Context::create().value();
  std::vector<std::unique_ptr<wire::Socket>> sockets;
  std::optional<wire::ClientSecurity> security;  // CURVE; plain TCP when unset
  wire::ClientSecurity insecure() {
    if (security) return *security;
    wire::ClientSecurity s;
    s.transport = wire::Transport::kInsecure;
    return s;
  }
  wire::Socket& dealer(const std::string& endpoint) {
    sockets.push_back(
        std::make_unique<wire::Socket>(wire::Socket::client(*ctx, wire::SocketType::kDealer, insecure()).value()));
    EXPECT_TRUE(sockets.back()->connect(endpoint).ok());
    return *sockets.back();
  }
  ~Client() { sockets.clear(); }

  void submit(const std::string& control, const std::string& id, const std::string& commit) {
    auto& d = dealer(control);
    pb::BuildRequest r;
    r.set_request_id(id);
    r.set_repo("file:///repo");
    r.set_commit(commit);
    r.set_recipe_path("quorate.toml");
    ASSERT_TRUE(d.send({wire::encode_frame(MessageType::kBuildRequest, r)}).ok());
    auto got = d.recv(5000);
    ASSERT_TRUE(got.ok() && got->has_value());
  }

  // Asks the verifier about `commit` until `pred` holds or 10 s pass; returns the last answer.
  pb::Answer query_until(const std::string& endpoint, const std::string& commit,
                         const std::function<bool(const pb::Answer&)>& pred) {
    auto& d = dealer(endpoint);
    pb::Answer last;
    auto deadline = SteadyClock::now() + std::chrono::seconds(10);
    while (SteadyClock::now() < deadline) {
      pb::Query q;
      q.set_request_id("q");
      q.mutable_subject()->set_commit(commit);
      EXPECT_TRUE(d.send({wire::encode_frame(MessageType::kQuery, q)}).ok());
      auto got = d.recv(2000);
      if (got.ok() && got->has_value()) {
        EXPECT_TRUE(wire::decode_message((**got)[0], MessageType::kAnswer, wire::Limits{}, last).ok());
        if (pred(last)) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
  }
};

bool accepted_by(const pb::Answer& a, size_t n) {
  return a.decisions_size() == 1 && a.decisions(0).accepted() &&
         static_cast<size_t>(a.decisions(0).agreeing_size()) == n;
}

const std::string kGood = "sha256:" + std::string(64, 'a');
const std::string kRogue = "sha256:" + std::string(64, 'b');

// Honest nodes (all publishing kGood) with the followed-node list and roster a verifier of them needs.
struct HonestNodes {
  std::vector<std::unique_ptr<TestNode>> nodes;
  std::vector<wire::FollowedNode> followed;
  std::set<std::string> roster;
  HonestNodes(const std::filesystem::path& dir, std::initializer_list<const char*> ids) {
    for (const char* id : ids) {
      nodes.push_back(std::make_unique<TestNode>(dir, id, kGood));
      followed.push_back(nodes.back()->followed());
      roster.insert(id);
    }
  }
};

TEST(VerifierDaemon, AcceptsOnQuorumAndNamesTheRogue) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  TestNode a(dir, "a", kGood), b(dir, "b", kGood), c(dir, "c", kGood), r(dir, "r", kRogue);
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, {a.followed(), b.followed(), c.followed(), r.followed()}, store, {"a", "b", "c", "r"}, 3);
  Client client;
  for (auto* n : {&a, &b, &c, &r}) client.submit(n->daemon->control_endpoint(), "job1", "c1");
  auto answer = client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) {
    return x.decisions_size() == 1 && x.decisions(0).agreeing_size() == 3 && x.decisions(0).dissenters_size() == 1;
  });
  ASSERT_EQ(answer.decisions_size(), 1);
  EXPECT_EQ(answer.decisions(0).dissenters(0).node_id(), "r");
  EXPECT_EQ(answer.decisions(0).dissenters(0).digest(), kRogue);
  EXPECT_GE(v.daemon->counters().decisions_published, 1u);
}

// Votes for one subject that arrive in separate loop turns within a second share one decision (docs/wire.md,
// "Coalescing"): the first vote is decided at once, the others when the second ends, not one decision each.
TEST(VerifierDaemon, VotesArrivingWithinASecondShareOneDecision) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  HonestNodes honest(dir, {"a", "b", "c", "d", "e", "f"});
  auto& nodes = honest.nodes;
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, honest.followed, store, honest.roster, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // connected
  Client client;
  for (auto& n : nodes) {
    client.submit(n->daemon->control_endpoint(), "job1", "c1");
    std::this_thread::sleep_for(std::chrono::milliseconds(60));  // each vote in a turn of its own
  }
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (v.daemon->counters().stored < 6 && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(v.daemon->counters().stored, 6u);
  // Not asked before the window ends: a query decides a subject at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_LE(v.daemon->counters().decisions_published, 3u);
  EXPECT_GE(v.daemon->counters().decisions_published, 1u);
  auto answer =
      client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) { return accepted_by(x, 6); });
  EXPECT_TRUE(accepted_by(answer, 6));
}

// When the last followed node votes, nothing is left to wait for: the subject is decided in that turn, not
// when its coalescing window ends (docs/wire.md, "Coalescing").
TEST(VerifierDaemon, ASubjectEveryNodeVotedForIsDecidedAtOnce) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  HonestNodes honest(dir, {"a", "b", "c", "d"});
  auto& nodes = honest.nodes;
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, honest.followed, store, honest.roster, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // connected
  Client client;
  const auto first = SteadyClock::now();
  for (auto& n : nodes) {
    client.submit(n->daemon->control_endpoint(), "job1", "c1");
    std::this_thread::sleep_for(std::chrono::milliseconds(40));  // each vote in a turn of its own
  }
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (v.daemon->counters().stored < 4 && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(v.daemon->counters().stored, 4u);
  const auto stored = SteadyClock::now();
  // The first vote was decided at once; the fourth completes the subject: a second decision follows within a
  // turn or two, long before the window opened by the first one ends.
  while (v.daemon->counters().decisions_published < 2 && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(v.daemon->counters().decisions_published, 2u);
  const double arrival_ms = std::chrono::duration<double, std::milli>(stored - first).count();
  if (arrival_ms > 600) GTEST_SKIP() << "the votes took " << arrival_ms << " ms to arrive: too loaded to tell";
  const double decided_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - stored).count();
  EXPECT_LT(decided_ms, 300.0);
  // Nothing more is decided when the window ends.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(v.daemon->counters().decisions_published, 2u);
}

TEST(VerifierDaemon, LateVerifierCatchesUpFromHistory) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  TestNode a(dir, "a", kGood), b(dir, "b", kGood);
  Client client;
  for (int i = 0; i < 5; ++i) {
    for (auto* n : {&a, &b})
      client.submit(n->daemon->control_endpoint(), "job" + std::to_string(i), "c" + std::to_string(i));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // published before anyone listens
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, {a.followed(), b.followed()}, store, {"a", "b"}, 2);
  for (int i = 0; i < 5; ++i) {
    auto answer = client.query_until(v.daemon->query_endpoint(), "c" + std::to_string(i),
                                     [](const pb::Answer& x) { return accepted_by(x, 2); });
    EXPECT_TRUE(accepted_by(answer, 2)) << i;
  }
  EXPECT_EQ(v.daemon->counters().stored, 10u);
}

TEST(VerifierDaemon, RestartedVerifierLosesNothingAndKeepsItsDecisions) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  TestNode a(dir, "a", kGood), b(dir, "b", kGood);
  auto store = std::make_shared<FakeStore>();
  Client client;
  {
    TestVerifier v(dir, {a.followed(), b.followed()}, store, {"a", "b"}, 2);
    client.submit(a.daemon->control_endpoint(), "j1", "c1");
    client.submit(b.daemon->control_endpoint(), "j1", "c1");
    EXPECT_TRUE(accepted_by(
        client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) { return accepted_by(x, 2); }),
        2));
  }
  // While the verifier is down, more is published.
  client.submit(a.daemon->control_endpoint(), "j2", "c2");
  client.submit(b.daemon->control_endpoint(), "j2", "c2");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  TestVerifier v(dir, {a.followed(), b.followed()}, store, {"a", "b"}, 2);
  EXPECT_TRUE(accepted_by(
      client.query_until(v.daemon->query_endpoint(), "c2", [](const pb::Answer& x) { return accepted_by(x, 2); }), 2));
  EXPECT_TRUE(accepted_by(
      client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) { return accepted_by(x, 2); }), 2));
  // The restarted verifier resumed from its cursors: it did not re-ingest c1.
  EXPECT_EQ(v.daemon->counters().received, 2u);
}

// Serves `node`'s history and heartbeats until `pred` holds or `limit` passes; whether it held.
bool serve_node_until(e2e::ScriptedNode& node, const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  const auto deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    node.serve();
    node.heartbeat();
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Record, then publish, then move cursors, with the loop's pipeline (issue 17): a batch polled and still being
// verified has moved the follower's cursor, yet the saved cursor stays below it while the batch before it is
// stored and its cursor saved; a stop with a batch in flight stores and decides it before exiting.
TEST(VerifierDaemon, ACursorIsNeverSavedPastABatchInFlight) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  e2e::ScriptedNode a("a", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  auto envelope = [](const std::string& commit) {
    return nlohmann::json{{"node", "a"}, {"repo", "r"}, {"commit", commit}, {"recipe", "q"}, {"digest", kGood}}.dump();
  };
  auto store = std::make_shared<FakeStore>();
  auto owned = std::make_unique<GatedJudge>(store, std::set<std::string>{"a"}, 1);
  GatedJudge* judge = owned.get();
  a.add(envelope("c1"));  // before the verifier listens: from history
  TestVerifier v(dir, {{"a", a.publish_endpoint(), a.control_endpoint(), ""}}, std::move(owned));
  auto saved_cursor = [&]() -> int64_t {
    sqlite::OpenOptions o;
    o.read_only = true;
    auto db = sqlite::Database::open(dir / "verifier" / "cursors.db", o);
    if (!db.ok()) return -1;
    auto st = (*db)->statement("SELECT sequence FROM cursors WHERE node_id = 'a'");
    if (!st.ok()) return -1;
    const int64_t out = (*st)->step() == SQLITE_ROW ? (*st)->integer(0) : 0;
    (*st)->reset();
    return out;
  };
  auto serve_until = [&](const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    return serve_node_until(a, pred, limit);
  };
  ASSERT_TRUE(serve_until([&] { return judge->calls() == 1; }, std::chrono::seconds(15)));  // c1 in flight
  a.add(envelope("c2"));
  a.add(envelope("c3"));
  serve_until([] { return false; }, std::chrono::milliseconds(500));  // polled while c1 is being verified
  judge->open_gate();  // c1 is stored and decided while c2 and c3 are verified (held at the gate)
  ASSERT_TRUE(serve_until([&] { return judge->calls() >= 2 && saved_cursor() >= 1; }, std::chrono::seconds(15)))
      << "calls " << judge->calls() << ", saved cursor " << saved_cursor();
  serve_until([] { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(saved_cursor(), 1) << "the cursor passed c2 and c3, polled and not stored";
  EXPECT_EQ(v.daemon->counters().stored, 1u);
  // Stopped with c2 and c3 in flight: they are stored and decided, then the cursor moves.
  std::thread stopper([&] { v.halt(); });
  judge->open_gate();
  stopper.join();
  EXPECT_EQ(v.daemon->counters().stored, 3u);
  EXPECT_EQ(v.daemon->counters().decisions_published, 3u);
  EXPECT_EQ(saved_cursor(), 3);
}

// Two batches are verified at once (issue 17: with one the verifying threads idled whenever they finished before
// the loop's thread had stored the batch before), and batches are stored in the order they were polled whichever
// is verified first.
TEST(VerifierDaemon, ASecondBatchIsVerifiedWhileTheFirstIsAndTheyAreStoredInOrder) {
  testing::ScratchDir scratch;
  e2e::ScriptedNode a("a", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  auto envelope = [](const std::string& commit) {
    return nlohmann::json{{"node", "a"}, {"repo", "r"}, {"commit", commit}, {"recipe", "q"}, {"digest", kGood}}.dump();
  };
  auto owned = std::make_unique<GatedJudge>(std::make_shared<FakeStore>(), std::set<std::string>{"a"}, 1);
  GatedJudge* judge = owned.get();
  a.add(envelope("c1"));
  TestVerifier v(scratch.path(), {{"a", a.publish_endpoint(), a.control_endpoint(), ""}}, std::move(owned));
  auto serve_until = [&](const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    return serve_node_until(a, pred, limit);
  };
  ASSERT_TRUE(serve_until([&] { return judge->calls() == 1; }, std::chrono::seconds(15)));  // c1 held at the gate
  a.add(envelope("c2"));
  ASSERT_TRUE(serve_until([&] { return judge->calls() == 2; }, std::chrono::seconds(15)))
      << "c2 was not verified while c1 was";
  EXPECT_EQ(v.daemon->counters().stored, 0u);
  judge->open_gate();
  judge->open_gate();  // both may return in either order
  ASSERT_TRUE(serve_until([&] { return v.daemon->counters().stored == 2; }, std::chrono::seconds(15)));
  EXPECT_EQ(judge->committed(), (std::vector<std::string>{"c1", "c2"}));
}

// The fake judge with Judge::prepare() recording how many queries it was given and held at a gate, call by
// call: the n-th call returns once the gate was opened n times (or after 20 s).
class PreparingJudge : public FakeJudge {
 public:
  using FakeJudge::FakeJudge;
  void prepare(const std::vector<pb::Query>& queries) override {
    std::unique_lock<std::mutex> lock(mu_);
    sizes_.push_back(queries.size());
    const size_t call = sizes_.size();
    cv_.wait_for(lock, std::chrono::seconds(20), [&] { return opened_ >= call; });
  }
  std::vector<size_t> sizes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sizes_;
  }
  void open_gate() {
    std::lock_guard<std::mutex> lock(mu_);
    ++opened_;
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> sizes_;
  size_t opened_ = 0;
};

// Issue 17: many queries waiting at once (a restarted verifier, which verifies the stored votes of each subject
// asked again) are answered eight at a time, in the order they came, each eight sent before the next are begun.
TEST(VerifierDaemon, ManyWaitingQueriesAreAnsweredEightAtATimeInOrder) {
  testing::ScratchDir scratch;
  auto store = std::make_shared<FakeStore>();
  for (int i = 0; i < 17; ++i) {
    pb::SubjectKey s;
    s.set_repo("r");
    s.set_commit("c" + std::to_string(i));
    s.set_recipe_path("q");
    store->subjects[s.SerializeAsString()] = s;
    store->votes[s.SerializeAsString()]["a"] = kGood;
  }
  e2e::ScriptedNode a("a", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  auto owned = std::make_unique<PreparingJudge>(store, std::set<std::string>{"a"}, 1);
  PreparingJudge* judge = owned.get();
  TestVerifier v(scratch.path(), {{"a", a.publish_endpoint(), a.control_endpoint(), ""}}, std::move(owned));
  Client client;
  wire::Socket& d = client.dealer(v.daemon->query_endpoint());
  auto ask = [&](int i) {
    pb::Query q;
    q.set_request_id("q" + std::to_string(i));
    q.mutable_subject()->set_commit("c" + std::to_string(i));
    ASSERT_TRUE(d.send({wire::encode_frame(MessageType::kQuery, q)}).ok());
  };
  std::vector<std::string> answered;
  auto receive = [&](size_t n) {
    while (answered.size() < n) {
      auto got = d.recv(5000);
      if (!got.ok() || !got->has_value()) return false;
      pb::Answer answer;
      EXPECT_TRUE(wire::decode_message((**got)[0], MessageType::kAnswer, wire::Limits{}, answer).ok());
      EXPECT_EQ(answer.decisions_size(), 1) << answer.request_id();
      if (answer.decisions_size() == 1) {
        EXPECT_EQ("q" + answer.decisions(0).subject().commit().substr(1), answer.request_id());
      }
      answered.push_back(answer.request_id());
    }
    return true;
  };
  // The first query holds the loop in prepare() while the other 16 arrive and wait together.
  ask(0);
  const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (judge->sizes().empty() && SteadyClock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(judge->sizes().size(), 1u);
  for (int i = 1; i <= 16; ++i) ask(i);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  judge->open_gate();
  judge->open_gate();
  // The third prepare() is held until the first nine answers have come: they were sent before it began.
  const bool early = receive(9);
  judge->open_gate();
  ASSERT_TRUE(early) << "the first answers waited for the last ones";
  ASSERT_TRUE(receive(17));
  EXPECT_EQ(judge->sizes(), (std::vector<size_t>{1, 8, 8}));
  std::vector<std::string> expected;
  for (int i = 0; i <= 16; ++i) expected.push_back("q" + std::to_string(i));
  EXPECT_EQ(answered, expected);
}

// The loop's thread stores, decides and answers queries: the threads verifying the next batch run 10 nicer, so
// that on a busy machine they take the CPU it leaves rather than delaying it (issue 17).
TEST(VerifierDaemon, BatchesAreVerifiedOnThreadsNicerThanTheLoop) {
  testing::ScratchDir scratch;
  e2e::ScriptedNode a("a", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  a.add(nlohmann::json{{"node", "a"}, {"repo", "r"}, {"commit", "c1"}, {"recipe", "q"}, {"digest", kGood}}.dump());
  auto owned = std::make_unique<GatedJudge>(std::make_shared<FakeStore>(), std::set<std::string>{"a"}, 1);
  GatedJudge* judge = owned.get();
  TestVerifier v(scratch.path(), {{"a", a.publish_endpoint(), a.control_endpoint(), ""}}, std::move(owned));
  const auto deadline = SteadyClock::now() + std::chrono::seconds(15);
  while (SteadyClock::now() < deadline && v.daemon->counters().stored < 1) {
    a.serve();
    a.heartbeat();
    if (judge->calls() >= 1) judge->open_gate();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(v.daemon->counters().stored, 1u);
  const auto [check_nice, commit_nice] = judge->nice_of_check_and_commit();
  ASSERT_NE(commit_nice, -100);
  EXPECT_EQ(check_nice, std::min(19, commit_nice + 10)) << "loop thread at nice " << commit_nice;
}

TEST(VerifierDaemon, NodeRestartOnTheSamePortsIsFollowed) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  auto store = std::make_shared<FakeStore>();
  auto a = std::make_unique<TestNode>(dir, "a", kGood);
  std::string pub = a->daemon->publish_endpoint(), control = a->daemon->control_endpoint();
  TestVerifier v(dir, {a->followed()}, store, {"a"}, 1);
  Client client;
  client.submit(control, "j1", "c1");
  EXPECT_TRUE(accepted_by(
      client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) { return accepted_by(x, 1); }), 1));
  a.reset();
  a = std::make_unique<TestNode>(dir, "a", kGood, "", pub, control);
  client.submit(control, "j2", "c2");
  EXPECT_TRUE(accepted_by(
      client.query_until(v.daemon->query_endpoint(), "c2", [](const pb::Answer& x) { return accepted_by(x, 1); }), 1));
}

TEST(VerifierDaemon, MisattributedAndUnknownSignersAreRejectedAndCounted) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  TestNode a(dir, "a", kGood);
  TestNode liar(dir, "liar", kRogue, /*claimed=*/"a");          // publishes envelopes "signed" by a
  TestNode stranger(dir, "stranger", kRogue, /*claimed=*/"x");  // signer not in the roster
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, {a.followed(), liar.followed(), stranger.followed()}, store, {"a", "liar", "stranger"}, 1);
  Client client;
  client.submit(liar.daemon->control_endpoint(), "j", "c1");
  client.submit(stranger.daemon->control_endpoint(), "j", "c1");
  client.submit(a.daemon->control_endpoint(), "j", "c1");
  auto answer =
      client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) { return accepted_by(x, 1); });
  EXPECT_TRUE(accepted_by(answer, 1));
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  while (v.daemon->counters().rejected < 2 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto c = v.daemon->counters();
  EXPECT_EQ(c.rejected, 2u);
  EXPECT_EQ(c.rejected_by_reason["unknown key"], 1u);
  EXPECT_EQ(c.rejected_by_reason["signer is not the publishing node"], 1u);
}

// A hostile "node": the test binds its PUB and ROUTER and sends what it likes.
struct HostileNode {
  std::unique_ptr<wire::Context> ctx = wire::Context::create().value();
  std::unique_ptr<wire::Socket> pub, router;
  std::string pub_ep, router_ep;
  HostileNode() {
    wire::ServerSecurity s;
    s.transport = wire::Transport::kInsecure;
    pub = std::make_unique<wire::Socket>(wire::Socket::server(*ctx, wire::SocketType::kPub, s).value());
    router = std::make_unique<wire::Socket>(wire::Socket::server(*ctx, wire::SocketType::kRouter, s).value());
    pub_ep = pub->bind("tcp://127.0.0.1:*").value();
    router_ep = router->bind("tcp://127.0.0.1:*").value();
  }
  ~HostileNode() {
    pub.reset();
    router.reset();
  }
};

// A followed node that sends 200 forged attestations gets each counted and stored as a rejection, but not 200
// warn lines: at most EventLog::kWarnBurst for that node and reason in a window.
TEST(VerifierDaemon, AFloodOfForgedAttestationsIsCountedWithoutAFloodOfWarnings) {
  testing::ScratchDir scratch;
  HostileNode h;
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(scratch.path(), {{"h", h.pub_ep, h.router_ep, ""}}, store, {"h"}, 1);
  auto req = h.router->recv(5000);
  ASSERT_TRUE(req.ok() && req->has_value());
  constexpr int kForged = 200;
  pb::HistoryResponse history;
  history.set_node_id("h");
  history.set_last_sequence(kForged);
  for (int i = 1; i <= kForged; ++i) {
    auto* a = history.add_attestations();
    a->set_node_id("h");
    a->set_sequence(static_cast<uint64_t>(i));
    a->set_envelope(nlohmann::json({{"node", "stranger"}, {"n", i}}).dump());
  }
  ASSERT_TRUE(h.router->send({(**req)[0], wire::encode_frame(MessageType::kHistoryResponse, history)}).ok());
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (v.daemon->counters().rejected < kForged && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(v.daemon->counters().rejected, static_cast<uint64_t>(kForged));
  EXPECT_EQ(v.daemon->counters().rejected_by_reason["unknown key"], static_cast<uint64_t>(kForged));
  const std::string log = v.log_text.str();
  size_t lines = 0;
  for (size_t at = log.find("\"event\":\"attestation_rejected\""); at != std::string::npos;
       at = log.find("\"event\":\"attestation_rejected\"", at + 1)) {
    ++lines;
  }
  EXPECT_GE(lines, 1u) << log;
  EXPECT_LE(lines, static_cast<size_t>(wire::EventLog::kWarnBurst)) << log;
}

TEST(VerifierDaemon, GarbageOversizedAndReplayedFramesAreDroppedAndCounted) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  HostileNode h;
  auto store = std::make_shared<FakeStore>();
  wire::Limits limits;
  limits.max_attestation_bytes = 4096;
  TestVerifier v(dir, {{"h", h.pub_ep, h.router_ep, ""}}, store, {"h"}, 1, limits);

  // Answer the verifier's first history request with nothing, so live delivery starts.
  auto req = h.router->recv(5000);
  ASSERT_TRUE(req.ok() && req->has_value());
  pb::HistoryResponse empty;
  empty.set_node_id("h");
  ASSERT_TRUE(h.router->send({(**req)[0], wire::encode_frame(MessageType::kHistoryResponse, empty)}).ok());

  pb::AttestationMessage good;
  good.set_node_id("h");
  good.set_sequence(1);
  good.set_envelope(
      nlohmann::json({{"node", "h"}, {"repo", "r"}, {"commit", "c1"}, {"recipe", "x"}, {"digest", kGood}}).dump());
  pb::AttestationMessage big = good;
  big.set_sequence(2);
  big.set_envelope(std::string(10000, 'x'));
  // Repeat until the subscription is live and the good one arrives.
  Client client;
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (v.daemon->counters().stored == 0 && SteadyClock::now() < deadline) {
    ASSERT_TRUE(h.pub->send({"att.h", "garbage!"}).ok());
    ASSERT_TRUE(h.pub->send({"att.h", wire::encode_frame(MessageType::kAttestation, big)}).ok());
    ASSERT_TRUE(h.pub->send({"att.h", "x", "y", "z"}).ok());
    ASSERT_TRUE(h.pub->send({"att.h", wire::encode_frame(MessageType::kAttestation, good)}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The subscription may have become live in the middle of a round, after its garbage: one more round of the
  // three bad frames, now certain to arrive, and ahead of the replays awaited below.
  ASSERT_TRUE(h.pub->send({"att.h", "garbage!"}).ok());
  ASSERT_TRUE(h.pub->send({"att.h", wire::encode_frame(MessageType::kAttestation, big)}).ok());
  ASSERT_TRUE(h.pub->send({"att.h", "x", "y", "z"}).ok());
  // A replay of the same attestation, and the same envelope under a new sequence number.
  ASSERT_TRUE(h.pub->send({"att.h", wire::encode_frame(MessageType::kAttestation, good)}).ok());
  pb::AttestationMessage again = good;
  again.set_sequence(2);
  ASSERT_TRUE(h.pub->send({"att.h", wire::encode_frame(MessageType::kAttestation, again)}).ok());
  // Garbage to the query socket too.
  auto& q = client.dealer(v.daemon->query_endpoint());
  ASSERT_TRUE(q.send({"not a query"}).ok());
  EXPECT_TRUE(accepted_by(
      client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) { return accepted_by(x, 1); }), 1));
  deadline = SteadyClock::now() + std::chrono::seconds(5);
  while (v.daemon->counters().duplicates < 1 && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto c = v.daemon->counters();
  EXPECT_EQ(c.stored, 1u);
  EXPECT_GE(c.duplicates, 1u) << "same envelope under a new sequence number";
  // Logged before they are counted: one line for the batch, the node and its sequences named.
  EXPECT_NE(v.log_text.str().find("\"event\":\"attestations_duplicate\""), std::string::npos) << v.log_text.str();
  EXPECT_NE(v.log_text.str().find("\"h\":{\"count\":"), std::string::npos) << v.log_text.str();
  EXPECT_GE(c.dropped, 4u) << "garbage, oversized, too many frames, bad query";
  EXPECT_NE(v.log_text.str().find("\"reason\":\"oversized\""), std::string::npos);
  EXPECT_NE(v.log_text.str().find("\"reason\":\"garbage\""), std::string::npos);
}

}  // namespace
}  // namespace quorate

namespace quorate {
namespace {

// CURVE keys for the daemons of one test, written as key files under `dir`.
struct CurveKeys {
  std::filesystem::path dir;
  std::map<std::string, wire::CurveKeyPair> keys;
  explicit CurveKeys(std::filesystem::path d) : dir(std::move(d)) {}
  const wire::CurveKeyPair& operator[](const std::string& name) {
    if (!keys.count(name)) {
      keys[name] = wire::generate_curve_keypair().value();
      EXPECT_TRUE(wire::write_curve_keypair(keys[name], dir / name).ok());
    }
    return keys[name];
  }
  // `name`'s server (or client) transport admitting `allowed` clients.
  wire::TransportConfig transport(const std::string& name, const std::vector<std::string>& allowed) {
    (void)(*this)[name];
    wire::TransportConfig t;
    t.curve_secret_key = dir / (name + ".curve.key");
    t.base_dir = dir;
    for (const auto& a : allowed) t.allowed_clients.push_back((*this)[a].public_z85);
    return t;
  }
  wire::ClientSecurity client(const std::string& name, const std::string& server) {
    wire::ClientSecurity c;
    c.client_keys = (*this)[name];
    c.server_public = (*this)[server].public_z85;
    return c;
  }
};

// A verifier given the wrong CURVE key for one node (an old key, a typo, or an address now held by another
// host) never follows it: nothing from that node is stored, a warn line names the node and says the CURVE
// handshake with it fails, and the verifier follows and decides for the other node meanwhile.
TEST(VerifierDaemonCurve, AWrongNodeKeyIsNotFollowedAndTheNodeIsNamed) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  CurveKeys keys(dir);
  TestNode n1(dir, "n1", kGood, {}, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
              keys.transport("n1", {"verifier", "submitter"}));
  TestNode n2(dir, "n2", kGood, {}, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
              keys.transport("n2", {"verifier", "submitter"}));
  auto f1 = n1.followed(), f2 = n2.followed();
  f1.server_key = keys["impostor"].public_z85;  // not n1's key
  f2.server_key = keys["n2"].public_z85;
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, {f1, f2}, store, {"n1", "n2"}, 1, {}, keys.transport("verifier", {"submitter"}));
  Client client;
  client.security = keys.client("submitter", "n1");
  client.submit(n1.daemon->control_endpoint(), "job1", "c1");
  client.security = keys.client("submitter", "n2");
  client.submit(n2.daemon->control_endpoint(), "job1", "c1");
  client.security = keys.client("submitter", "verifier");
  auto answer = client.query_until(v.daemon->query_endpoint(), "c1", [](const pb::Answer& x) {
    return x.decisions_size() == 1 && x.decisions(0).agreeing_size() >= 1;
  });
  ASSERT_EQ(answer.decisions_size(), 1) << v.log_text.str();
  EXPECT_EQ(std::vector<std::string>(answer.decisions(0).agreeing().begin(), answer.decisions(0).agreeing().end()),
            std::vector<std::string>{"n2"});
  bool named = false;
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while (!named && SteadyClock::now() < deadline) {
    std::istringstream lines(v.log_text.str());
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"level\":\"warn\"") != std::string::npos &&
          line.find("\"node_id\":\"n1\"") != std::string::npos && line.find("CURVE") != std::string::npos) {
        named = true;
      }
    }
    if (!named) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(named) << "no warn line names n1 and its CURVE handshake:\n" << v.log_text.str();
  for (const auto& [subject, votes] : store->votes) EXPECT_EQ(votes.count("n1"), 0u) << "n1 was followed";
  EXPECT_EQ(v.daemon->counters().stored, 1u);
}

// The client "querier" (allowed by `v`) sends `q` and is answered.
void expect_querier_answered(CurveKeys& keys, TestVerifier& v, const pb::Query& q) {
  Client querier;
  querier.security = keys.client("querier", "verifier");
  auto& ok = querier.dealer(v.daemon->query_endpoint());
  ASSERT_TRUE(ok.send({wire::encode_frame(MessageType::kQuery, q)}).ok());
  auto answered = ok.recv(5000);
  ASSERT_TRUE(answered.ok());
  EXPECT_TRUE(answered->has_value()) << "the allowed client was not answered";
}

// A client whose key is not in the verifier's allowed_clients gets no answer, the verifier logs zap_denied with
// that key when it happens (the node already did; the verifier only counted), and allowed clients are answered.
TEST(VerifierDaemonCurve, ARefusedQuerierIsLoggedWithItsKeyAndOthersAreAnswered) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  CurveKeys keys(dir);
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, {}, store, {}, 1, {}, keys.transport("verifier", {"querier"}));
  Client stranger;
  stranger.security = keys.client("stranger", "verifier");
  auto& d = stranger.dealer(v.daemon->query_endpoint());
  pb::Query q;
  q.set_request_id("q");
  q.mutable_subject()->set_commit("c1");
  ASSERT_TRUE(d.send({wire::encode_frame(MessageType::kQuery, q)}).ok());
  auto got = d.recv(1500);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value()) << "a client outside allowed_clients was answered";
  const std::string stranger_key = keys["stranger"].public_z85;
  auto logged = [&] {
    std::istringstream lines(v.log_text.str());
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"event\":\"zap_denied\"") != std::string::npos && line.find(stranger_key) != std::string::npos)
        return true;
    }
    return false;
  };
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  while (!logged() && SteadyClock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(logged()) << v.log_text.str();
  EXPECT_EQ(v.log_text.str().find(keys["stranger"].secret_z85), std::string::npos);
  EXPECT_GE(v.daemon->counters().zap_denied, 1u);
  expect_querier_answered(keys, v, q);
}

// A client speaking NULL to the verifier's CURVE query socket, or claiming an allowed key without its secret,
// fails in libzmq before ZAP: nothing was logged. The verifier now logs handshake_failed naming the socket, the
// address and the kind, rate-limited like every warning (40 NULL clients, at most kWarnBurst lines of that
// kind), and allowed clients are answered.
TEST(VerifierDaemonCurve, HandshakesFailingBeforeZapAreLoggedRateLimited) {
  testing::ScratchDir scratch;
  auto dir = scratch.path();
  CurveKeys keys(dir);
  auto store = std::make_shared<FakeStore>();
  TestVerifier v(dir, {}, store, {}, 1, {}, keys.transport("verifier", {"querier"}));
  pb::Query q;
  q.set_request_id("q");
  q.mutable_subject()->set_commit("c1");
  for (int i = 0; i < 40; ++i) {
    Client null_client;  // plain TCP: the NULL mechanism
    auto& d = null_client.dealer(v.daemon->query_endpoint());
    (void)d.send({wire::encode_frame(MessageType::kQuery, q)});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Client impostor;
  impostor.security = keys.client("querier", "verifier");
  impostor.security->client_keys.secret_z85 = keys["stranger"].secret_z85;
  (void)impostor.dealer(v.daemon->query_endpoint()).send({wire::encode_frame(MessageType::kQuery, q)});
  auto count = [&](const std::string& reason) {
    std::istringstream lines(v.log_text.str());
    size_t n = 0;
    for (std::string line; std::getline(lines, line);) {
      if (line.find("\"event\":\"handshake_failed\"") != std::string::npos &&
          line.find("\"socket\":\"query\"") != std::string::npos &&
          line.find("\"reason\":\"" + reason + "\"") != std::string::npos &&
          line.find("127.0.0.1") != std::string::npos)
        ++n;
    }
    return n;
  };
  auto deadline = SteadyClock::now() + std::chrono::seconds(10);
  while ((count("security mechanism mismatch") == 0 || count("CURVE handshake did not verify") == 0) &&
         SteadyClock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(count("security mechanism mismatch"), 1u) << v.log_text.str();
  EXPECT_LE(count("security mechanism mismatch"), static_cast<size_t>(wire::EventLog::kWarnBurst));
  EXPECT_GE(count("CURVE handshake did not verify"), 1u) << v.log_text.str();
  expect_querier_answered(keys, v, q);
}

TEST(VerifierConfig, TheShippedExampleLoads) {
  auto c = quorum::load_verifier_config(quorate::testing::source_dir() / "examples/quorum.toml");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->nodes.size(), 3u);
  EXPECT_EQ(c->nodes[1].node_id, "node-b");
  EXPECT_EQ(c->policy.filename(), "policy.toml");
}

TEST(VerifierConfig, UnknownKeysAndDuplicateNodesAreNamed) {
  testing::ScratchDir dir;
  std::ofstream(dir / "q.toml")
      << "policy = \"p.toml\"\ndata_dir = \"d\"\n[[nodes]]\nid = \"a\"\npublish = \"tcp://127.0.0.1:1\"\n"
         "control = \"tcp://127.0.0.1:2\"\ncolour = \"blue\"\n";
  auto c = quorum::load_verifier_config(dir / "q.toml");
  EXPECT_NE(c.status().message().find("nodes.colour"), std::string::npos) << c.status().to_string();
  std::ofstream(dir / "q2.toml")
      << "policy = \"p.toml\"\ndata_dir = \"d\"\n"
         "[[nodes]]\nid = \"a\"\npublish = \"tcp://127.0.0.1:1\"\ncontrol = \"tcp://127.0.0.1:2\"\n"
         "[[nodes]]\nid = \"a\"\npublish = \"tcp://127.0.0.1:3\"\ncontrol = \"tcp://127.0.0.1:4\"\n";
  auto c2 = quorum::load_verifier_config(dir / "q2.toml");
  EXPECT_NE(c2.status().message().find("listed twice"), std::string::npos) << c2.status().to_string();
}

}  // namespace
}  // namespace quorate
