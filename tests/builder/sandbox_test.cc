// run_step: cleared environment, umask 022, fixed paths, no network, read-only host, failures with log tails.
#include "quorate/builder/sandbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_util.h"

namespace quorate::builder {
namespace {

using quorate::testing::ScratchDir;
using quorate::testing::slurp;
using ::testing::HasSubstr;

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto d : {"src", "out", "tmp"}) std::filesystem::create_directories(scratch_ / d);
    spec_.src_dir = scratch_ / "src";
    spec_.out_dir = scratch_ / "out";
    spec_.tmp_dir = scratch_ / "tmp";
    spec_.log = scratch_ / "build.log";
    spec_.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/tmp"}, {"TZ", "UTC"}, {"LC_ALL", "C.UTF-8"}};
    auto s = resolve_sandbox(Sandbox::kAuto, spec_.bwrap);
    ASSERT_TRUE(s.ok());
    bubblewrap_ = *s == Sandbox::kBubblewrap;
    spec_.sandbox = *s;
  }
  Status run(const std::string& script) {
    spec_.argv = {"/bin/sh", "-c", script};
    return run_step(spec_);
  }
  ScratchDir scratch_;
  RunSpec spec_;
  bool bubblewrap_ = false;
};

TEST_F(SandboxTest, SeesOnlyTheDeclaredEnvironmentAndUmask022) {
  ::setenv("QUORATE_LEAK", "secret", 1);
  mode_t old = ::umask(077);
  Status s = run("env | sort > \"$OUT/env\"; umask > \"$OUT/umask\"; pwd > \"$OUT/pwd\"");
  ::umask(old);
  ASSERT_TRUE(s.ok()) << s.to_string();
  std::string env = slurp(scratch_ / "out/env");
  EXPECT_THAT(env, HasSubstr("TZ=UTC\n"));
  EXPECT_THAT(env, HasSubstr("LC_ALL=C.UTF-8\n"));
  EXPECT_THAT(env, ::testing::Not(HasSubstr("QUORATE_LEAK")));
  EXPECT_EQ(slurp(scratch_ / "out/umask"), "0022\n");
  if (bubblewrap_) {
    EXPECT_THAT(env, HasSubstr("OUT=/out\n"));
    EXPECT_EQ(slurp(scratch_ / "out/pwd"), "/src\n");
  }
}

TEST_F(SandboxTest, FailingStepReportsStatusAndLogTail) {
  Status s = run("echo first line; echo 'compiler said no' >&2; exit 3");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("exited with status 3"));
  EXPECT_THAT(s.message(), HasSubstr("compiler said no"));
  EXPECT_THAT(slurp(spec_.log), HasSubstr("first line"));
}

TEST_F(SandboxTest, WritesOutsideTheOutputFailUnderBubblewrap) {
  if (!bubblewrap_) GTEST_SKIP() << "bubblewrap does not work here";
  Status s = run("echo x > /usr/quorate-escape");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("Read-only file system"));
  EXPECT_FALSE(std::filesystem::exists("/usr/quorate-escape"));
}

TEST_F(SandboxTest, NetworkIsCutUnderBubblewrap) {
  if (!bubblewrap_) GTEST_SKIP() << "bubblewrap does not work here";
  ASSERT_TRUE(run("cat /proc/net/dev > \"$OUT/dev\"; hostname > \"$OUT/host\" 2>/dev/null || true").ok());
  std::string dev = slurp(scratch_ / "out/dev");
  EXPECT_THAT(dev, HasSubstr("lo:"));
  EXPECT_THAT(dev, ::testing::Not(HasSubstr("eth0")));
}

TEST_F(SandboxTest, MissingBubblewrapIsRefusedUnlessAuto) {
  auto strict = resolve_sandbox(Sandbox::kBubblewrap, "/nonexistent/bwrap");
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(strict.status().message(), HasSubstr("--no-sandbox"));
  EXPECT_EQ(resolve_sandbox(Sandbox::kAuto, "/nonexistent/bwrap").value(), Sandbox::kNone);
  EXPECT_EQ(resolve_sandbox(Sandbox::kNone, "/nonexistent/bwrap").value(), Sandbox::kNone);
}

TEST_F(SandboxTest, HostModeStillClearsTheEnvironment) {
  spec_.sandbox = Sandbox::kNone;
  ::setenv("QUORATE_LEAK", "secret", 1);
  ASSERT_TRUE(run("env > \"$OUT/env\"").ok());
  std::string env = slurp(scratch_ / "out/env");
  EXPECT_THAT(env, ::testing::Not(HasSubstr("QUORATE_LEAK")));
  EXPECT_THAT(env, HasSubstr("OUT=" + (scratch_ / "out").string()));
}

TEST(LogTailTest, KeepsTheLastLines) {
  ScratchDir scratch;
  std::ofstream(scratch / "log") << "1\n2\n3\n4\n";
  EXPECT_EQ(log_tail(scratch / "log", 2), "3\n4\n");
  EXPECT_EQ(log_tail(scratch / "log", 10), "1\n2\n3\n4\n");
}

}  // namespace
}  // namespace quorate::builder
