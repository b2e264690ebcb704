// Issue 11, item 11: a sandboxed run step (root inside) sees no host secrets under /etc: not shadow, not a
// keys directory like the README's /etc/quorate/keys; passwd and group are synthesized, programs still run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "quorate/builder/sandbox.h"
#include "support/test_util.h"

namespace quorate::builder {
namespace {

using quorate::testing::ScratchDir;
using quorate::testing::slurp;
using ::testing::HasSubstr;

class HostEtc : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = resolve_sandbox(Sandbox::kBubblewrap, spec_.bwrap);
    ASSERT_TRUE(s.ok()) << "these tests need a working bubblewrap (CI runs them as root): " << s.status().to_string();
    for (auto d : {"src", "out", "tmp"}) std::filesystem::create_directories(scratch_ / d);
    spec_.src_dir = scratch_ / "src";
    spec_.out_dir = scratch_ / "out";
    spec_.tmp_dir = scratch_ / "tmp";
    spec_.log = scratch_ / "build.log";
    spec_.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/tmp"}};
    spec_.sandbox = Sandbox::kBubblewrap;
    // A stand-in for a node's key directory (the README keeps keys under /etc/quorate/keys).
    keys_ = "/etc/quorate-hostile-test-" + std::to_string(::getpid());
    std::filesystem::create_directories(keys_);
    quorate::testing::spit(keys_ / "node.key", "PRIVATE KEY MATERIAL\n");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(keys_, ec);
  }
  Status run(const std::string& script) {
    spec_.argv = {"/bin/sh", "-c", script};
    return run_step(spec_);
  }
  ScratchDir scratch_;
  RunSpec spec_;
  std::filesystem::path keys_;
};

TEST_F(HostEtc, ShadowIsNotReadable) {
  ASSERT_TRUE(std::filesystem::exists("/etc/shadow")) << "precondition: the host has /etc/shadow";
  Status s = run("cat /etc/shadow > \"$OUT/shadow\"");
  EXPECT_FALSE(s.ok()) << "a run step read the host's /etc/shadow";
  EXPECT_EQ(slurp(scratch_ / "out/shadow"), "");
}

TEST_F(HostEtc, AKeysDirectoryUnderEtcIsNotVisible) {
  Status s = run("ls /etc > \"$OUT/etc\"; cat " + (keys_ / "node.key").string() + " > \"$OUT/key\"");
  EXPECT_FALSE(s.ok()) << "a run step read a file under the host's /etc";
  EXPECT_THAT(slurp(scratch_ / "out/key"), ::testing::Not(HasSubstr("PRIVATE")));
  EXPECT_THAT(slurp(scratch_ / "out/etc"), ::testing::Not(HasSubstr("quorate")));
}

TEST_F(HostEtc, PasswdAndGroupAreSynthesizedAndProgramsRun) {
  Status s =
      run("cat /etc/passwd > \"$OUT/passwd\"; cat /etc/group > \"$OUT/group\"; id -un > \"$OUT/user\"; "
          "ls /etc | sort > \"$OUT/etc\"");
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(slurp(scratch_ / "out/passwd"), kSandboxPasswd);
  EXPECT_EQ(slurp(scratch_ / "out/group"), kSandboxGroup);
  EXPECT_EQ(slurp(scratch_ / "out/user"), "root\n");
  std::string etc = slurp(scratch_ / "out/etc");
  EXPECT_THAT(etc, ::testing::Not(HasSubstr("shadow")));
  EXPECT_THAT(etc, HasSubstr("passwd\n"));
}

TEST_F(HostEtc, DebianAlternativesStillResolve) {
  if (!std::filesystem::exists("/etc/alternatives/cc")) GTEST_SKIP() << "no cc alternative on this host";
  Status s = run("cc --version > \"$OUT/cc\"");
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_FALSE(slurp(scratch_ / "out/cc").empty());
}

}  // namespace
}  // namespace quorate::builder
