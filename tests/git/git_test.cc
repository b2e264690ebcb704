// git: opening a repository, and what a failure to open one says.
#include "quorate/git/git.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_util.h"

namespace quorate::git {
namespace {
using quorate::testing::ScratchDir;
using ::testing::HasSubstr;

TEST(GitTest, OpensARepositoryAndNamesAMissingOneAsGiven) {
  Library lib;
  ScratchDir dir;
  Repository created;
  ASSERT_EQ(git_repository_init(&created.p, (dir / "repo").c_str(), /*is_bare=*/1), 0) << last_error();
  Repository repo;
  EXPECT_TRUE(open_repository((dir / "repo").string(), repo).ok());
  EXPECT_NE(repo.p, nullptr);

  Repository missing;
  Status s = open_repository((dir / "none").string(), missing, "file://" + (dir / "none").string());
  EXPECT_TRUE(s.is_not_found());
  EXPECT_THAT(s.message(), HasSubstr("cannot open repository file://" + (dir / "none").string() + ": "));
  EXPECT_EQ(missing.p, nullptr);
}

TEST(GitTest, ObjectIdsAreFortyHexDigits) {
  git_oid oid;
  ASSERT_EQ(git_oid_fromstr(&oid, "0123456789abcdef0123456789abcdef01234567"), 0);
  EXPECT_EQ(oid_hex(&oid), "0123456789abcdef0123456789abcdef01234567");
}

}  // namespace
}  // namespace quorate::git
