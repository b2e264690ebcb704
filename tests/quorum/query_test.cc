// Answers to "is this image accepted, for which commit?" and "what was accepted for this commit?".
#include "quorate/quorum/query.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "quorum/votes.h"
#include "support/test_util.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using ::testing::HasSubstr;

std::vector<Vote> two_commits() {
  return {vote("node-a", "good"), vote("node-b", "good"), vote("node-a", "next", kNow - 60, "", subject("beef")),
          vote("node-b", "rogue", kNow - 60, "", subject("beef"))};
}

TEST(Answer, ImageAcceptedNamesItsCommit) {
  Policy p = policy(roster({"node-a", "node-b"}), rules(2));
  auto votes = two_commits();
  Answer a = answer(p, votes, {digest("good"), "", ""}, kNow).value();
  EXPECT_TRUE(a.yes);
  ASSERT_EQ(a.decisions.size(), 1u);
  EXPECT_EQ(a.decisions[0].subject, subject());
  EXPECT_THAT(a.summary, HasSubstr("is accepted for " + subject().to_string()));
}

TEST(Answer, ImageWithoutQuorumIsNo) {
  Policy p = policy(roster({"node-a", "node-b"}), rules(2));
  auto votes = two_commits();
  EXPECT_FALSE(answer(p, votes, {digest("next"), "", ""}, kNow).value().yes);
  Answer none = answer(p, votes, {digest("unheard-of"), "", ""}, kNow).value();
  EXPECT_FALSE(none.yes);
  EXPECT_THAT(none.summary, HasSubstr("nothing attested"));
  EXPECT_TRUE(answer(p, votes, {"sha256:nothex", "", ""}, kNow).status().is_bad_input());
}

// The gate's --quorum mode: decisions made elsewhere (reversed, as a peer may send them) summarise exactly as
// the votes they were made from.
TEST(Answer, FromDecisionsSummarisesAsFromVotes) {
  Policy p = policy(roster({"node-a", "node-b"}), rules(2));
  auto votes = two_commits();
  for (const std::string& image : {digest("good"), digest("next"), digest("unheard-of")}) {
    Answer direct = answer(p, votes, {image, "", ""}, kNow).value();
    std::vector<Decision> reversed(direct.decisions.rbegin(), direct.decisions.rend());
    Answer relayed = answer_from_decisions(p, reversed, {image, "", ""}).value();
    EXPECT_EQ(relayed.yes, direct.yes) << image;
    EXPECT_EQ(relayed.summary, direct.summary) << image;
    ASSERT_EQ(relayed.decisions.size(), direct.decisions.size());
  }
  EXPECT_TRUE(answer_from_decisions(p, {}, {"sha256:nothex", "", ""}).status().is_bad_input());
}

TEST(Answer, CommitLooksAtEverySubjectKeyOfThatCommit) {
  Policy p = policy(roster({"node-a", "node-b"}), rules(2));
  auto votes = two_commits();
  Answer a = answer(p, votes, {"", "c0ffee", ""}, kNow).value();
  EXPECT_TRUE(a.yes);
  EXPECT_EQ(a.decisions[0].digest, digest("good"));
  Answer b = answer(p, votes, {"", "beef", ""}, kNow).value();
  EXPECT_FALSE(b.yes);
  EXPECT_FALSE(answer(p, votes, {"", "c0ffee", "https://elsewhere/x.git"}, kNow).value().yes);
}

// The release gate's question: is this digest accepted for this commit? An image accepted for another commit
// is not an answer.
TEST(Answer, ImageAndCommitTogetherMustBothMatch) {
  Policy p = policy(roster({"node-a", "node-b"}), rules(2));
  auto votes = two_commits();
  Answer yes = answer(p, votes, {digest("good"), "c0ffee", ""}, kNow).value();
  EXPECT_TRUE(yes.yes);
  EXPECT_THAT(yes.summary, HasSubstr("is accepted for " + subject().to_string()));
  Answer other_commit = answer(p, votes, {digest("good"), "beef", ""}, kNow).value();
  EXPECT_FALSE(other_commit.yes);
  EXPECT_THAT(other_commit.summary, HasSubstr("nothing attested for image " + digest("good") + " for commit beef"));
  EXPECT_FALSE(answer(p, votes, {digest("good"), "c0ffee", "https://elsewhere/x.git"}, kNow).value().yes);
}

}  // namespace
}  // namespace quorate::quorum
