// Policy: parsing the top-level keys, refusing policies that cannot be met, and the policy digest.
#include "quorate/quorum/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "quorum/votes.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using ::testing::HasSubstr;

TEST(ParseRules, ReadsEveryKey) {
  auto r = parse_rules(R"(
threshold = 3
match = "content"
on_conflict = "majority"
max_age = "30d"
run_environment = "pinned"
required = ["node-a", "node-b"]
roster = "roster.toml"
[[nodes]]
id = "node-a"
public_key = "a.pem"
)",
                       "p.toml");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->threshold, 3);
  EXPECT_EQ(r->match, MatchMode::kContent);
  EXPECT_EQ(r->on_conflict, ConflictMode::kMajority);
  EXPECT_EQ(r->max_age, 30 * 86400);
  EXPECT_TRUE(r->pinned_run_environment);
  EXPECT_EQ(r->required, (std::vector<std::string>{"node-a", "node-b"}));
}

TEST(ParseRules, DefaultsAreImageAndReject) {
  auto r = parse_rules("threshold = 1\n", "p.toml").value();
  EXPECT_EQ(r.match, MatchMode::kImage);
  EXPECT_EQ(r.on_conflict, ConflictMode::kReject);
  EXPECT_FALSE(r.max_age.has_value());
  EXPECT_FALSE(r.pinned_run_environment);
}

TEST(ParseRules, RefusesBadValuesNamingTheKey) {
  struct Case {
    const char* toml;
    const char* expect;
  };
  for (const Case& c :
       {Case{"", "missing required key 'threshold'"}, Case{"threshold = \"3\"", "'threshold' must be an integer"},
        Case{"threshold = 1\nmatch = \"files\"", "'match' must be"},
        Case{"threshold = 1\non_conflict = \"vote\"", "'on_conflict' must be"},
        Case{"threshold = 1\nmax_age = \"soon\"", "'max_age' must be"},
        Case{"threshold = 1\nrequired = \"a\"", "'required' must be an array"},
        Case{"threshold = 1\nrun_environment = \"host\"", "'run_environment' must be \"pinned\" or \"any\""},
        Case{"threshold = 1\nthreshhold = 2", "unknown key 'threshhold'"}, Case{"threshold = [", "p.toml:1"}}) {
    auto r = parse_rules(c.toml, "p.toml");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_TRUE(r.status().is_bad_input());
    EXPECT_THAT(r.status().message(), HasSubstr(c.expect)) << c.toml;
  }
}

// decide() adds max_age to a signing time: "9223372036854775807s" made that sum overflow (undefined behaviour,
// in the time a decision holds until). Anything over 10,000 years is refused; 10,000 years is not.
TEST(ParseRules, AMaxAgeOverTenThousandYearsIsRefused) {
  auto r = parse_rules("threshold = 1\nmax_age = \"9223372036854775807s\"", "p.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input());
  EXPECT_THAT(r.status().message(), HasSubstr("p.toml:2: 'max_age' is more than 10000 years"));
  EXPECT_TRUE(parse_rules("threshold = 1\nmax_age = \"521800w\"", "p.toml").ok());
}

TEST(PolicyCreate, RefusesPoliciesThatCannotBeMet) {
  auto trust = Trust::create(roster({"a", "b", "c"})).value();
  EXPECT_THAT(Policy::create(rules(0), trust).status().message(), HasSubstr("less than 1"));
  EXPECT_THAT(Policy::create(rules(4), trust).status().message(), HasSubstr("cannot be met"));
  QuorumRules r = rules(2);
  r.required = {"d"};
  EXPECT_THAT(Policy::create(r, trust).status().message(), HasSubstr("required node 'd' is not in the roster"));
  EXPECT_TRUE(Policy::create(rules(3), trust).ok());
}

TEST(PolicyCreate, DigestCoversRulesAndKeys) {
  auto trust = Trust::create(roster({"a", "b"})).value();
  Policy p1 = Policy::create(rules(1), trust).value();
  Policy p2 = Policy::create(rules(2), trust).value();
  auto keys = roster({"a", "b"});
  keys[1].revoked_at = 1000;
  Policy p3 = Policy::create(rules(1), Trust::create(keys).value()).value();
  EXPECT_NE(p1.digest(), p2.digest());
  EXPECT_NE(p1.digest(), p3.digest());
  EXPECT_EQ(p1.digest(), Policy::create(rules(1), Trust::create(roster({"b", "a"})).value()).value().digest());
  EXPECT_EQ(p1.canonical_json().rfind("{\"match\":\"image\",\"max_age\":null,\"nodes\":[{\"keyid\":\"", 0), 0u)
      << p1.canonical_json();
}

}  // namespace
}  // namespace quorate::quorum
