// Trust: roster entries grouped into voters, and key validity at a time.
#include "quorate/quorum/trust.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "quorum/votes.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using ::testing::ElementsAre;

TEST(Trust, SharedKeysAndSharedNodeIdsAreOneVoter) {
  auto keys = roster({"b", "c", "d"});
  keys.push_back({"a", keyid("c"), std::nullopt, std::nullopt, std::nullopt});         // c's key also under a
  keys.push_back({"d", keyid("d-second"), std::nullopt, std::nullopt, std::nullopt});  // d has two keys
  Trust t = Trust::create(keys).value();
  EXPECT_THAT(t.voters(), ElementsAre("a", "b", "d"));
  EXPECT_EQ(t.voter_of_node("c"), "a");
  EXPECT_EQ(t.voter_of_key(keyid("c")), "a");
  EXPECT_EQ(t.voter_of_key(keyid("d-second")), "d");
  EXPECT_THAT(t.node_ids_of("a"), ElementsAre("a", "c"));
  EXPECT_FALSE(t.voter_of_key(keyid("nobody")).has_value());
}

TEST(Trust, ValidityWindowsAndRevocation) {
  auto keys = roster({"a"});
  keys[0].not_before = 100;
  keys[0].not_after = 200;
  keys[0].revoked_at = 150;
  Trust t = Trust::create(keys).value();
  EXPECT_EQ(t.validity(keyid("a"), 99), KeyValidity::kNotYetValid);
  EXPECT_EQ(t.validity(keyid("a"), 100), KeyValidity::kValid);
  EXPECT_EQ(t.validity(keyid("a"), 149), KeyValidity::kValid);
  EXPECT_EQ(t.validity(keyid("a"), 150), KeyValidity::kRevoked);
  EXPECT_EQ(t.validity(keyid("b"), 120), KeyValidity::kUnknown);
}

TEST(Trust, ExpiryIsAfterNotAfter) {
  auto keys = roster({"a"});
  keys[0].not_after = 200;
  Trust t = Trust::create(keys).value();
  EXPECT_EQ(t.validity(keyid("a"), 200), KeyValidity::kValid);
  EXPECT_EQ(t.validity(keyid("a"), 201), KeyValidity::kExpired);
}

TEST(Trust, RejectsMalformedEntries) {
  EXPECT_TRUE(Trust::create({{"", keyid("a"), {}, {}, {}}}).status().is_bad_input());
  EXPECT_TRUE(Trust::create({{"a", "ABC", {}, {}, {}}}).status().is_bad_input());
}

}  // namespace
}  // namespace quorate::quorum
