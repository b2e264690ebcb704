// Issue 11, item 5: a node whose node.db is restored from a backup, or wiped, numbers its new attestations
// with sequence numbers the verifier has passed already. They used to be dropped as replays (2 of 3 lost after
// a restore, 2 of 2 after a wipe). Each run of a node is now an incarnation; the verifier sees the new one,
// goes back to where the node's history forked and stores every new attestation.
#include <sqlite3.h>

#include "e2e/process.h"
#include "network_support.h"

namespace quorate::hostile {
namespace {

// Node "a" on fixed ports, restartable over the same data directory.
struct RestartableNode {
  node::NodeConfig config;
  std::unique_ptr<Running<node::NodeDaemon>> running;
  int builds = 0;

  explicit RestartableNode(const std::filesystem::path& dir) {
    config.node_id = "a";
    config.data_dir = dir / "a";
    config.transport.insecure = true;
    config.heartbeat_interval_ms = 100;
    config.publish_endpoint = "tcp://127.0.0.1:" + std::to_string(e2e::free_port());
    config.control_endpoint = "tcp://127.0.0.1:" + std::to_string(e2e::free_port());
    start();
  }
  void start() {
    running = std::make_unique<Running<node::NodeDaemon>>();
    auto d = node::NodeDaemon::open(config, std::make_unique<ClaimingRebuilder>("a", "good"), running->log, {});
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    running->daemon = std::move(*d);
    running->start();
  }
  void stop() { running.reset(); }
  wire::FollowedNode followed() const { return {"a", config.publish_endpoint, config.control_endpoint, ""}; }
  std::filesystem::path db() const { return config.data_dir / "node.db"; }

  // Asks for a build of `commit` and waits for its JobStatus answer (the build itself is asynchronous).
  void submit(const std::string& commit) {
    auto ctx = wire::Context::create().value();
    auto dealer = wire::Socket::client(*ctx, wire::SocketType::kDealer, insecure_client()).value();
    ASSERT_TRUE(dealer.connect(config.control_endpoint).ok());
    pb::BuildRequest r;
    r.set_request_id("req-" + std::to_string(++builds) + "-" + commit);
    r.set_repo("file:///repo.git");
    r.set_commit(commit);
    r.set_recipe_path("quorate.toml");
    ASSERT_TRUE(dealer.send({wire::encode_frame(wire::MessageType::kBuildRequest, r)}).ok());
    auto got = dealer.recv(5000);
    ASSERT_TRUE(got.ok() && got->has_value()) << "no answer to the build request";
  }
};

// node.db and its WAL files, copied to or from `to` (the node is stopped).
void copy_store(const std::filesystem::path& from_db, const std::filesystem::path& to_db) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::path to = to_db.string() + suffix;
    std::filesystem::remove(to);
    std::filesystem::path from = from_db.string() + suffix;
    if (std::filesystem::exists(from)) std::filesystem::copy_file(from, to);
  }
}

uint64_t stored(TestVerifier& v) { return v.daemon->counters().stored; }

TEST(NetworkHostile, NodeStoreRestoredFromBackupLosesNoNewAttestation) {
  testing::ScratchDir dir;
  RestartableNode a(dir.path());
  TestVerifier v(dir.path(), {a.followed()});
  a.submit("c1");
  ASSERT_TRUE(wait_for([&] { return stored(v) == 1; }));

  a.stop();
  copy_store(a.db(), dir / "backup.db");  // the backup knows sequence 1
  a.start();
  a.submit("c2");
  a.submit("c3");
  ASSERT_TRUE(wait_for([&] { return stored(v) == 3; }));  // the verifier's cursor is at 3

  a.stop();
  copy_store(dir / "backup.db", a.db());  // restored: the node is back at sequence 1
  a.start();
  a.submit("c4");  // sequence 2 again
  a.submit("c5");  // sequence 3 again
  a.submit("c6");  // sequence 4
  EXPECT_TRUE(wait_for([&] { return stored(v) == 6; })) << "stored " << stored(v) << " of 6";
  v.halt();
  EXPECT_NE(v.log_text.str().find("node_incarnation_changed"), std::string::npos);
}

TEST(NetworkHostile, WipedNodeStoreLosesNoNewAttestation) {
  testing::ScratchDir dir;
  RestartableNode a(dir.path());
  TestVerifier v(dir.path(), {a.followed()});
  a.submit("c1");
  a.submit("c2");
  ASSERT_TRUE(wait_for([&] { return stored(v) == 2; }));

  a.stop();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(a.db().string() + suffix);
  a.start();
  a.submit("c3");  // sequence 1 again
  a.submit("c4");  // sequence 2 again
  EXPECT_TRUE(wait_for([&] { return stored(v) == 4; })) << "stored " << stored(v) << " of 4";
}

TEST(NetworkHostile, VerifierRestartedAcrossANodeRestoreLosesNothing) {
  // The verifier is down while the node is restored and builds again: it comes back with a cursor of the old
  // incarnation, and the lineage tells it where to resume.
  testing::ScratchDir dir;
  RestartableNode a(dir.path());
  auto v = std::make_unique<TestVerifier>(dir.path(), std::vector<wire::FollowedNode>{a.followed()});
  a.submit("c1");
  ASSERT_TRUE(wait_for([&] { return stored(*v) == 1; }));
  a.stop();
  copy_store(a.db(), dir / "backup.db");
  a.start();
  a.submit("c2");
  a.submit("c3");
  ASSERT_TRUE(wait_for([&] { return stored(*v) == 3; }));
  v.reset();  // verifier down, cursor saved at 3

  a.stop();
  copy_store(dir / "backup.db", a.db());
  a.start();
  a.submit("c4");
  a.submit("c5");
  ASSERT_TRUE(wait_for([&] { return a.running->daemon->counters().succeeded == 2; }));
  a.stop();
  a.start();  // and one more restart, so the verifier meets a third incarnation
  a.submit("c6");

  v = std::make_unique<TestVerifier>(dir.path(), std::vector<wire::FollowedNode>{a.followed()});
  // The store already holds c1..c3 (counted as duplicates if re-delivered); c4..c6 are new.
  EXPECT_TRUE(wait_for([&] { return stored(*v) == 3; })) << "stored " << stored(*v) << " of 3 new";
}

TEST(NetworkHostile, CursorSavedBeforeIncarnationsIsKept) {
  // A cursors.db of the schema before incarnations (node_id, sequence): the verifier migrates it, keeps the
  // cursor and adopts the node's incarnation instead of starting over.
  testing::ScratchDir dir;
  RestartableNode a(dir.path());
  a.submit("c1");
  a.submit("c2");
  ASSERT_TRUE(wait_for([&] { return a.running->daemon->counters().succeeded == 2; }));
  std::filesystem::create_directories(dir / "verifier");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "verifier" / "cursors.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE cursors(node_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL);"
                         "INSERT INTO cursors VALUES('a', 1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  TestVerifier v(dir.path(), {a.followed()});
  ASSERT_TRUE(wait_for([&] { return stored(v) == 1; })) << "c2, after the saved cursor";
  a.submit("c3");
  ASSERT_TRUE(wait_for([&] { return stored(v) == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(stored(v), 2u) << "c1 was fetched again: the old cursor was not kept";
}

}  // namespace
}  // namespace quorate::hostile
