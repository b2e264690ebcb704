// GitSource: commits are read from the object database (by path or file:// URL), never from a working tree.
#include "quorate/builder/source.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <random>

#include "git_repo.h"

namespace quorate::builder {
namespace {

using ::testing::HasSubstr;
using namespace quorate::builder::testing;
using quorate::testing::ScratchDir;

class SourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(scratch_ / "src/a.txt", "alpha\n");
    write_text(scratch_ / "src/dir/b.txt", "beta\n");
    write_text(scratch_ / "src/run.sh", "#!/bin/sh\n");
    ::chmod((scratch_ / "src/run.sh").c_str(), 0755);
    std::filesystem::create_symlink("a.txt", scratch_ / "src/link");
    commit_ = make_repo(scratch_ / "src", repo_);
  }
  ScratchDir scratch_;
  std::filesystem::path repo_ = scratch_ / "repo";
  std::string commit_;
};

TEST_F(SourceTest, ListsTheCommitTreeSorted) {
  auto s = GitSource::open(repo_.string(), "HEAD", scratch_ / "clones");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->commit_id(), commit_);
  EXPECT_EQ((*s)->commit_time(), kCommitTime);
  EXPECT_EQ((*s)->tree_id().size(), 40u);
  std::vector<std::string> paths;
  for (const auto& e : (*s)->entries()) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"a.txt", "dir", "dir/b.txt", "link", "run.sh"}));
  EXPECT_EQ((*s)->entries()[1].kind, TreeEntry::Kind::kDirectory);
  EXPECT_EQ((*s)->entries()[3].kind, TreeEntry::Kind::kSymlink);
  EXPECT_EQ((*s)->entries()[4].kind, TreeEntry::Kind::kExecutable);
  EXPECT_EQ((*s)->read_path("dir/b.txt").value(), "beta\n");
}

TEST_F(SourceTest, UntrackedAndModifiedFilesDoNotLeakIn) {
  write_text(repo_ / "untracked.txt", "leak\n");
  write_text(repo_ / "a.txt", "modified\n");
  auto s = GitSource::open(repo_.string(), commit_, scratch_ / "clones");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->entries().size(), 5u);
  EXPECT_EQ((*s)->read_path("a.txt").value(), "alpha\n");
  EXPECT_TRUE((*s)->read_path("untracked.txt").status().is_not_found());
}

// A build request names the URL, and libgit2 wrote whatever the server sent: a clone is ended past its bound,
// and as soon as the build's deadline (keep_going) says so, leaving nothing under the clone directory.
TEST_F(SourceTest, AClonePastItsBoundOrDeadlineIsEndedNamingWhy) {
  std::string noise(4 << 20, '\0');  // incompressible: the pack is as large
  std::mt19937_64 random(7);
  for (auto& c : noise) c = static_cast<char>(random());
  write_text(scratch_ / "big/noise.bin", noise);
  const std::filesystem::path big = scratch_ / "big-repo";
  make_repo(scratch_ / "big", big);
  const std::string url = "file://" + big.string();

  CloneLimits small;
  small.max_bytes = 1 << 20;
  auto s = GitSource::open(url, "HEAD", scratch_ / "clones", small);
  ASSERT_FALSE(s.ok()) << "4 MiB were cloned under a 1 MiB bound";
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
  EXPECT_THAT(s.status().message(), HasSubstr("clone " + url + ": the clone received more than 1048576 bytes"));
  EXPECT_TRUE(std::filesystem::is_empty(scratch_ / "clones"));

  int asked = 0;
  CloneLimits late;
  late.keep_going = [&] { return ++asked < 3 ? Status() : Status::bad_input("timed out (build timeout 1 s)"); };
  s = GitSource::open(url, "HEAD", scratch_ / "clones", late);
  ASSERT_FALSE(s.ok()) << "the clone went on past its deadline";
  EXPECT_THAT(s.status().message(), HasSubstr("clone " + url + ": timed out (build timeout 1 s)"));
  EXPECT_TRUE(std::filesystem::is_empty(scratch_ / "clones"));

  CloneLimits enough;
  enough.max_bytes = 64 << 20;
  enough.keep_going = [] { return Status(); };
  s = GitSource::open(url, "HEAD", scratch_ / "clones", enough);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ((*s)->read_path("noise.bin").value(), noise);
}

TEST_F(SourceTest, ClonesFileUrlsAndRemovesTheClone) {
  {
    auto s = GitSource::open("file://" + repo_.string(), commit_.substr(0, 12), scratch_ / "clones");
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ((*s)->commit_id(), commit_);
    EXPECT_FALSE(std::filesystem::is_empty(scratch_ / "clones"));
  }
  EXPECT_TRUE(std::filesystem::is_empty(scratch_ / "clones"));
}

TEST_F(SourceTest, MissingCommitIsNotFound) {
  auto s = GitSource::open(repo_.string(), "0123456789abcdef0123456789abcdef01234567", scratch_ / "clones");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().is_not_found());
  EXPECT_THAT(s.status().message(), HasSubstr("commit \"0123456789abcdef0123456789abcdef01234567\" not found"));
}

TEST_F(SourceTest, UnreachableRepositoryIsNotFound) {
  auto local = GitSource::open((scratch_ / "nope").string(), "HEAD", scratch_ / "clones");
  ASSERT_FALSE(local.ok());
  EXPECT_THAT(local.status().message(), HasSubstr("cannot open repository"));
  auto remote = GitSource::open("file://" + (scratch_ / "nope").string(), "HEAD", scratch_ / "clones");
  ASSERT_FALSE(remote.ok());
  EXPECT_THAT(remote.status().message(), HasSubstr("cannot clone repository file://"));
  EXPECT_TRUE(std::filesystem::is_empty(scratch_ / "clones"));
}

TEST_F(SourceTest, CheckoutHasFixedModesAndTimes) {
  auto s = GitSource::open(repo_.string(), "HEAD", scratch_ / "clones");
  ASSERT_TRUE(s.ok());
  std::filesystem::create_directories(scratch_ / "co");
  ASSERT_TRUE((*s)->checkout(scratch_ / "co", 12345).ok());
  struct stat st;
  ASSERT_EQ(::stat((scratch_ / "co/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_mtime, 12345);
  ASSERT_EQ(::stat((scratch_ / "co/dir/b.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(::stat((scratch_ / "co/dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtime, 12345);
  EXPECT_EQ(std::filesystem::read_symlink(scratch_ / "co/link"), "a.txt");
  EXPECT_EQ(quorate::testing::slurp(scratch_ / "co/a.txt"), "alpha\n");
}

TEST(RemoteTest, TellsUrlsFromPaths) {
  EXPECT_TRUE(is_remote("file:///tmp/x"));
  EXPECT_TRUE(is_remote("https://github.com/a/b"));
  EXPECT_TRUE(is_remote("git@github.com:a/b.git"));
  EXPECT_FALSE(is_remote("/tmp/repo"));
  EXPECT_FALSE(is_remote("relative/dir"));
}

}  // namespace
}  // namespace quorate::builder
