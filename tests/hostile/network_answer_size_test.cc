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

TEST(NetworkHostile, AnImageAttestedForManyCommitsStillGetsAnAnswer) {
  testing::ScratchDir dir;
  const auto store = dir.path() / "verifier" / "store.db";
  {
    auto judge = open_judge(store);
    std::vector<quorum::Judge::Submission> batch;
    // The release: a and b agree (k = 2).
    batch.push_back({"a", claim("a", "release", "good")});
    batch.push_back({"b", claim("b", "release", "good")});
    // The hostile node's votes: the same image, commits nobody built.
    for (int i = 0; i < kMadeUp; ++i) batch.push_back({"c", claim("c", "made-up-" + std::to_string(i), "good")});
    auto got = judge->ingest(batch);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
  }
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

}  // namespace
}  // namespace quorate::hostile
