// A node with a valid key attests an honest image for many made-up commits. Every query about that image (what
// `quorate gate --quorum` asks) was answered with a decision per commit: 1,500 commits made an answer of several
// MiB, over the Answer limit (1 MiB), which every client drops as oversized. The gate got no answer and refused
// an image that two nodes had accepted. The verifier now keeps an answer under the limit: accepted decisions
// first, and says how many it left out.
#include <iostream>

#include "e2e/process.h"
#include "network_support.h"
#include "quorate/wire/query_client.h"

namespace quorate::hostile {
namespace {

constexpr int kMadeUp = 1500;

// The verifier's store: a and b accept "release" with image "good" (k = 2); c, a node with a valid key, attests
// "good" for kMadeUp commits nobody built.
void store_many_commits_of_one_image(const std::filesystem::path& dir) {
  auto judge = open_judge(dir / "verifier" / "store.db");
  std::vector<quorum::Judge::Submission> batch;
  batch.push_back({"a", claim("a", "release", "good")});
  batch.push_back({"b", claim("b", "release", "good")});
  for (int i = 0; i < kMadeUp; ++i) batch.push_back({"c", claim("c", "made-up-" + std::to_string(i), "good")});
  auto got = judge->ingest(batch);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
}

TEST(NetworkHostile, AnImageAttestedForManyCommitsStillGetsAnAnswer) {
  testing::ScratchDir dir;
  store_many_commits_of_one_image(dir.path());
  TestVerifier v(dir.path(), {});
  auto client = wire::QueryClient::connect(v.daemon->query_endpoint(), insecure_client());
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  pb::Query q;
  q.set_image_digest(image("good"));
  const auto started = SteadyClock::now();
  auto answer = (*client)->ask(q, 30000);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
  ASSERT_TRUE(answer.ok()) << answer.status().to_string() << " (after " << took << " ms)";
  std::cout << "answer: " << answer->decisions_size() << " decisions, " << answer->omitted() << " left out, "
            << answer->ByteSizeLong() << " bytes, " << took << " ms\n";
  EXPECT_TRUE(answer->error().empty()) << answer->error();
  EXPECT_LE(answer->ByteSizeLong() + wire::kFrameHeaderSize, wire::Limits{}.max_decision_bytes);
  EXPECT_EQ(answer->decisions_size() + static_cast<int>(answer->omitted()), kMadeUp + 1);
  ASSERT_GE(answer->decisions_size(), 1);
  // The accepted decision comes first: the gate sees it whatever was left out.
  EXPECT_TRUE(answer->decisions(0).accepted());
  EXPECT_EQ(answer->decisions(0).subject().commit(), quorum::testing::commit_of("release"));
  for (int i = 1; i < answer->decisions_size(); ++i) EXPECT_FALSE(answer->decisions(i).accepted());
}

// The real judge, counting the queries by image it is asked to answer.
class CountingJudge : public quorum::Judge {
 public:
  explicit CountingJudge(std::unique_ptr<quorum::Judge> inner) : inner_(std::move(inner)) {}
  std::atomic<int> image_finds{0};

  Result<std::vector<Outcome>> ingest(const std::vector<Submission>& batch) override { return inner_->ingest(batch); }
  std::unique_ptr<Checks> check(const std::vector<Submission>& batch) const override { return inner_->check(batch); }
  Result<std::vector<Outcome>> commit(const std::vector<Submission>& batch, std::unique_ptr<Checks> checks) override {
    return inner_->commit(batch, std::move(checks));
  }
  Status record(const std::vector<pb::Decision>& decisions) override { return inner_->record(decisions); }
  Result<std::optional<LastRevision>> last_revision(const pb::SubjectKey& s) override {
    return inner_->last_revision(s);
  }
  Result<pb::Decision> decide(const pb::SubjectKey& s) override { return inner_->decide(s); }
  Result<std::vector<pb::SubjectKey>> subjects() override { return inner_->subjects(); }
  Result<std::vector<pb::Decision>> find_by_image(const std::string& d) override {
    ++image_finds;
    return inner_->find_by_image(d);
  }
  Result<std::vector<pb::Decision>> find_by_subject(const pb::SubjectKey& s) override {
    return inner_->find_by_subject(s);
  }
  void prepare(const std::vector<pb::Query>& queries) override { inner_->prepare(queries); }
  Result<bool> is_recorded(const pb::Decision& d) override { return inner_->is_recorded(d); }
  std::vector<quorum::DistrustedRow> take_distrusted() override { return inner_->take_distrusted(); }

 private:
  std::unique_ptr<quorum::Judge> inner_;
};

// A client sends 100 queries about that image at once (the first decides 1,501 subjects, about 0.3 s; the
// others, from the votes kept, about 35 ms each) and reads nothing; an honest query sent right after waited for
// all of them (3.6 s). A question asked again among the queries answered together is now answered once.
TEST(NetworkHostile, AFloodOfOneExpensiveQueryDoesNotHoldTheOthers) {
  testing::ScratchDir dir;
  store_many_commits_of_one_image(dir.path());
  auto owned = std::make_unique<CountingJudge>(open_judge(dir.path() / "verifier" / "store.db"));
  CountingJudge* judge = owned.get();
  TestVerifier v(dir.path(), {}, std::move(owned));
  auto ctx = wire::Context::create().value();
  auto flooder = wire::Socket::client(*ctx, wire::SocketType::kDealer, insecure_client()).value();
  ASSERT_TRUE(flooder.connect(v.daemon->query_endpoint()).ok());
  pb::Query expensive;
  expensive.set_image_digest(image("good"));
  for (int i = 0; i < 100; ++i) {
    expensive.set_request_id("flood-" + std::to_string(i));
    ASSERT_TRUE(flooder.send({wire::encode_frame(wire::MessageType::kQuery, expensive)}).ok());
  }
  ASSERT_TRUE(wait_for([&] { return v.daemon->counters().queries >= 1; }));
  auto client = wire::QueryClient::connect(v.daemon->query_endpoint(), insecure_client());
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  pb::Query honest;
  *honest.mutable_subject() = subject("release");
  const auto started = SteadyClock::now();
  auto answer = (*client)->ask(honest, 60000);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count();
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  std::cout << "honest query behind 100 expensive ones: " << took << " ms, " << judge->image_finds
            << " image queries worked out\n";
  ASSERT_EQ(answer->decisions_size(), 1);
  EXPECT_TRUE(answer->decisions(0).accepted());
  // The hundred were worked out once per batch of queries gathered (a few), not a hundred times.
  EXPECT_LE(judge->image_finds.load(), 10);
}

}  // namespace
}  // namespace quorate::hostile
