// Issue 11, item 14: nothing a run step starts in the background outlives it, with or without bubblewrap,
// whether the step ends by itself or by its timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include "e2e/process.h"
#include "hostile/builder_fixture.h"
#include "quorate/builder/sandbox.h"

namespace quorate::builder {
namespace {

using quorate::testing::ScratchDir;
using quorate::testing::slurp;
using Clock = std::chrono::steady_clock;

// PIDs of processes whose command line mentions `marker`.
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = slurp(e.path() / "cmdline");
    if (cmdline.find(marker) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

bool lingering_process(const std::string& marker) {
  auto until = Clock::now() + std::chrono::seconds(2);
  while (!processes_with(marker).empty()) {
    if (Clock::now() >= until) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

class ProcessGroup : public ::testing::TestWithParam<Sandbox> {
 protected:
  void SetUp() override {
    if (GetParam() == Sandbox::kBubblewrap) {
      auto s = resolve_sandbox(Sandbox::kBubblewrap, spec_.bwrap);
      ASSERT_TRUE(s.ok()) << "needs a working bubblewrap (CI runs as root): " << s.status().to_string();
    }
    for (auto d : {"src", "out", "tmp"}) std::filesystem::create_directories(scratch_ / d);
    spec_.src_dir = scratch_ / "src";
    spec_.out_dir = scratch_ / "out";
    spec_.tmp_dir = scratch_ / "tmp";
    spec_.log = scratch_ / "build.log";
    spec_.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/tmp"}};
    spec_.sandbox = GetParam();
    // A copy of sleep under a name no other process has, inside the checkout (visible with either sandbox).
    marker_ = "qr-linger-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_);
    std::filesystem::copy_file("/bin/sleep", spec_.src_dir / marker_);
    std::filesystem::permissions(spec_.src_dir / marker_, std::filesystem::perms(0755));
  }
  void TearDown() override {
    for (pid_t pid : processes_with(marker_)) ::kill(pid, SIGKILL);  // only what this test started
  }
  // True when a process named by the marker is still alive 2 s after the step returned (bounded poll; a
  // killed process may take a moment to disappear).
  bool lingering() { return lingering_process(marker_); }
  ScratchDir scratch_;
  RunSpec spec_;
  std::string marker_;
  static inline int counter_ = 0;
};

TEST_P(ProcessGroup, BackgroundProcessDoesNotOutliveTheStep) {
  spec_.argv = {"/bin/sh", "-c", "./" + marker_ + " 30 & echo started > \"$OUT/log\""};
  auto start = Clock::now();
  Status s = run_step(spec_);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(lingering()) << "a background process of the step is still running";
}

TEST_P(ProcessGroup, TimeoutKillsTheStepAndItsChildren) {
  spec_.argv = {"/bin/sh", "-c", "./" + marker_ + " 30 & ./" + marker_ + " 31"};
  spec_.deadline = Clock::now() + std::chrono::seconds(1);
  auto start = Clock::now();
  Status s = run_step(spec_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), ::testing::HasSubstr("timed out"));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(lingering());
}

INSTANTIATE_TEST_SUITE_P(Sandboxes, ProcessGroup, ::testing::Values(Sandbox::kBubblewrap, Sandbox::kNone),
                         [](const auto& p) { return std::string(sandbox_name(p.param)); });

class BuildProcessGroup : public hostile::HostileBuild {};

TEST_F(BuildProcessGroup, NoSandboxBuildLeavesNoProcessBehind) {
  std::string marker = "qr-linger-build-" + std::to_string(::getpid());
  auto commit = commit_recipe(
      hostile::run_recipe("cp /bin/sleep \"$HOME/" + marker + "\"; \"$HOME/" + marker + "\" 30 & echo x > \"$OUT/x\""));
  auto r = build(options(commit, Sandbox::kNone));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  bool left = lingering_process(marker);
  for (pid_t pid : processes_with(marker)) ::kill(pid, SIGKILL);  // only what this test started
  EXPECT_FALSE(left) << "the build returned with its step's background process alive";
}

// Ctrl-C (or SIGTERM) on `quorate build`: the step leads a process group of its own, so the signal reached only
// quorate; without a sandbox the step ran on, and the build's work directory stayed. Now the step's group is
// killed, the work directory and half-written output are removed, and quorate dies of the signal.
TEST_F(BuildProcessGroup, AnInterruptedBuildStopsItsStepAndLeavesNothing) {
  std::string marker = "qr-linger-interrupted-" + std::to_string(::getpid());
  auto commit =
      commit_recipe(hostile::run_recipe("cp /bin/sleep \"$HOME/" + marker + "\"; exec \"$HOME/" + marker + "\" 60"));
  for (int sig : {SIGINT, SIGTERM}) {
    auto work = scratch_ / ("work-" + std::to_string(sig)), out = scratch_ / ("out-" + std::to_string(sig));
    e2e::Process build({quorate::testing::quorate_bin(), "build", "-q", "--no-sandbox", "--repo", repo_.string(),
                        "--commit", commit, "--out", out.string(), "--work-dir", work.string()},
                       scratch_ / "build.out", scratch_ / "build.err");
    bool started = e2e::wait_until([&] { return !processes_with(marker).empty(); }, std::chrono::seconds(60));
    EXPECT_TRUE(started) << build.err();
    build.signal(sig);
    EXPECT_EQ(build.wait(std::chrono::seconds(30)), 128 + sig) << build.err();
    bool left = lingering_process(marker);
    for (pid_t pid : processes_with(marker)) ::kill(pid, SIGKILL);  // only what this test started
    EXPECT_FALSE(left) << "the interrupted build's step is still running";
    EXPECT_TRUE(!std::filesystem::exists(work) || std::filesystem::is_empty(work))
        << "the interrupted build left its work directory";
    EXPECT_FALSE(std::filesystem::exists(out));
  }
}

}  // namespace
}  // namespace quorate::builder
