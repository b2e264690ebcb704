// Issue 11, item 6: a decision that left the verifier is already recorded. The judge's record() is made slow
// (as a slow fsync would be); a subscriber checks, for every decision it receives, that the store already
// holds it. Publishing before recording (the old order) fails this at once; a SIGKILL in that window lost
// the decision from the decisions table.
#include "e2e/scripted_node.h"
#include "network_support.h"

namespace quorate::hostile {
namespace {

// The real judge, with record() delayed before it writes.
class SlowRecordJudge : public quorum::Judge {
 public:
  explicit SlowRecordJudge(std::unique_ptr<quorum::Judge> inner) : inner_(std::move(inner)) {}
  Result<std::vector<Outcome>> ingest(const std::vector<Submission>& batch) override { return inner_->ingest(batch); }
  Status record(const std::vector<pb::Decision>& decisions) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return inner_->record(decisions);
  }
  Result<pb::Decision> decide(const pb::SubjectKey& s) override { return inner_->decide(s); }
  Result<std::vector<pb::SubjectKey>> subjects() override { return inner_->subjects(); }
  Result<std::vector<pb::Decision>> find_by_image(const std::string& d) override { return inner_->find_by_image(d); }
  Result<std::vector<pb::Decision>> find_by_subject(const pb::SubjectKey& s) override {
    return inner_->find_by_subject(s);
  }

 private:
  std::unique_ptr<quorum::Judge> inner_;
};

// Whether the store at `path` (read through its own connection) holds `d` in its decisions table.
bool recorded(const std::filesystem::path& path, const pb::Decision& d) {
  auto store = quorum::Store::open(path);
  if (!store.ok()) return false;
  auto rows = (*store)->decisions();
  if (!rows.ok()) return false;
  for (const auto& r : *rows) {
    if (r.subject.commit == d.subject().commit() && r.accepted == d.accepted() && r.digest == d.digest()) return true;
  }
  return false;
}

TEST(NetworkHostile, EveryPublishedDecisionIsAlreadyRecorded) {
  testing::ScratchDir dir;
  e2e::ScriptedNode a("a", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  e2e::ScriptedNode b("b", "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
  auto store_path = dir / "verifier" / "store.db";
  std::filesystem::create_directories(store_path.parent_path());
  TestVerifier v(
      dir.path(),
      {{"a", a.publish_endpoint(), a.control_endpoint(), ""}, {"b", b.publish_endpoint(), b.control_endpoint(), ""}},
      std::make_unique<SlowRecordJudge>(open_judge(store_path)));

  auto ctx = wire::Context::create().value();
  auto sub = wire::Socket::client(*ctx, wire::SocketType::kSub, insecure_client()).value();
  ASSERT_TRUE(sub.subscribe(std::string(wire::kDecisionTopicPrefix)).ok());
  ASSERT_TRUE(sub.connect(v.daemon->publish_endpoint()).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the subscription reaches the verifier

  const std::vector<std::string> commits = {"c1", "c2", "c3"};
  for (const auto& c : commits) {
    a.add(claim("a", c, "good"));
    b.add(claim("b", c, "good"));
  }
  std::set<std::string> accepted;
  int checked = 0;
  auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  while (accepted.size() < commits.size() && SteadyClock::now() < deadline) {
    a.serve();
    b.serve();
    auto got = sub.recv(20);
    ASSERT_TRUE(got.ok());
    if (!got->has_value()) continue;
    pb::Decision d;
    ASSERT_TRUE(wire::decode_message((**got)[1], wire::MessageType::kDecision, wire::Limits{}, d).ok());
    EXPECT_TRUE(recorded(store_path, d)) << "published before recorded: " << d.subject().commit()
                                         << " accepted=" << d.accepted() << " revision " << d.revision();
    ++checked;
    if (d.accepted()) accepted.insert(d.subject().commit());
  }
  EXPECT_EQ(accepted.size(), commits.size()) << checked << " decisions received";
}

}  // namespace
}  // namespace quorate::hostile
