// run_process: argv without a shell, environment, directory, captured output and its limits, deadlines that
// kill the whole process group; find_program.
#include "quorate/core/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <thread>

#include "support/test_util.h"

namespace quorate {
namespace {
namespace fs = std::filesystem;
using testing::ScratchDir;

ProcessSpec shell(const std::string& script) {
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  return spec;
}

TEST(ProcessTest, ArgumentsReachTheProgramAsGivenWithoutAShell) {
  ProcessSpec spec;
  spec.argv = {"/bin/echo", "$HOME", "a b", "'q'", ";", "ls"};
  auto r = run_process(spec).value();
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.output, "$HOME a b 'q' ; ls\n");
}

TEST(ProcessTest, CapturesStdoutAndStderrTogetherOrDiscardsStderr) {
  auto both = run_process(shell("echo out; echo err >&2")).value();
  EXPECT_EQ(both.output, "out\nerr\n");
  auto spec = shell("echo out; echo err >&2");
  spec.stderr_to = Stderr::kDiscard;
  EXPECT_EQ(run_process(spec).value().output, "out\n");
}

TEST(ProcessTest, ReportsTheExitStatus) {
  auto r = run_process(shell("exit 3")).value();
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.ending, ProcessEnding::kExited);
  ASSERT_TRUE(WIFEXITED(r.wait_status));
  EXPECT_EQ(WEXITSTATUS(r.wait_status), 3);
  EXPECT_EQ(describe_wait_status(r.wait_status), "exited with status 3");
}

TEST(ProcessTest, AMissingProgramExits127) {
  ProcessSpec spec;
  spec.argv = {"/nonexistent/program"};
  auto r = run_process(spec).value();
  ASSERT_TRUE(WIFEXITED(r.wait_status));
  EXPECT_EQ(WEXITSTATUS(r.wait_status), 127);
}

TEST(ProcessTest, EnvironmentIsExactlyTheOneGivenAndTheDirectoryIsSet) {
  ScratchDir dir;
  auto spec = shell("echo \"$FOO|$HOME|$(pwd)\"");
  spec.env = std::vector<std::string>{"FOO=bar"};
  spec.cwd = dir.path();
  EXPECT_EQ(run_process(spec).value().output, "bar||" + fs::canonical(dir.path()).string() + "\n");
}

TEST(ProcessTest, OutputGoesToTheGivenDescriptor) {
  ScratchDir dir;
  int fd = ::open((dir / "log").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  auto spec = shell("echo logged; echo also >&2");
  spec.output_fd = fd;
  auto r = run_process(spec).value();
  ::close(fd);
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.output, "");
  EXPECT_EQ(testing::slurp(dir / "log"), "logged\nalso\n");
}

TEST(ProcessTest, TheDeadlineKillsTheWholeGroup) {
  ScratchDir dir;
  // A background child that would outlive its parent writes a marker after 2 s, unless it was killed.
  auto spec = shell("(sleep 2; touch " + (dir / "survived").string() + ") & sleep 30");
  spec.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  auto started = std::chrono::steady_clock::now();
  auto r = run_process(spec).value();
  EXPECT_EQ(r.ending, ProcessEnding::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(fs::exists(dir / "survived"));
}

TEST(ProcessTest, BackgroundProcessesDieWithTheMainOne) {
  ScratchDir dir;
  auto spec = shell("(sleep 1; touch " + (dir / "survived").string() + ") > /dev/null 2>&1 & exit 0");
  EXPECT_TRUE(run_process(spec).value().succeeded());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(fs::exists(dir / "survived"));
}

TEST(ProcessTest, CapturedOutputPastTheLimitIsCutAndTheProcessKilled) {
  auto spec = shell("while true; do echo line; done");
  spec.max_output_lines = 10;
  auto r = run_process(spec).value();
  EXPECT_EQ(r.ending, ProcessEnding::kOutputCut);
  EXPECT_GE(r.output.size(), 10 * 5u);
  auto bytes = shell("head -c 100000 /dev/zero");
  bytes.max_output_bytes = 1000;
  EXPECT_EQ(run_process(bytes).value().ending, ProcessEnding::kOutputCut);
}

TEST(ProcessTest, CancellationKillsIt) {
  std::atomic<bool> cancel{true};
  auto spec = shell("sleep 30");
  spec.cancel = &cancel;
  EXPECT_EQ(run_process(spec).value().ending, ProcessEnding::kCancelled);
}

// A command taking its signals on a thread of its own blocks them everywhere else, and a mask survives exec:
// skopeo started by `quorate image pull` could not be interrupted or terminated.
TEST(ProcessTest, TheProgramStartsWithNoSignalBlocked) {
  sigset_t block, old;
  sigemptyset(&block);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, sig);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old), 0);
  ProcessSpec spec;
  spec.argv = {"/bin/grep", "SigBlk", "/proc/self/status"};  // no shell: dash clears the mask itself
  auto r = run_process(spec);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->output, "SigBlk:\t0000000000000000\n");
}

// What an interrupted command calls: every running program's group is killed, on whatever thread runs it, and
// none is started after. In a child process of its own, since nothing runs after it there.
TEST(ProcessDeathTest, KillRunningProcessesStopsEveryGroupAndStartsNoMore) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ScratchDir dir;
  const std::string pid_file = (dir / "background.pid").string();
  EXPECT_EXIT(
      {
        std::optional<Result<ProcessResult>> got;
        std::thread runner([&] { got = run_process(shell("sleep 60 & echo $! > " + pid_file + "; wait")); });
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (testing::slurp(pid_file).empty() && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        kill_running_processes();
        runner.join();
        std::string background = testing::slurp(pid_file);
        background.erase(background.find_last_not_of('\n') + 1);
        auto gone = [&] {  // SIGKILL is delivered asynchronously: dead, or a zombie until it is reaped
          std::string state = testing::slurp("/proc/" + background + "/stat");
          return state.empty() || state.find(") Z ") != std::string::npos;
        };
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!background.empty() && !gone() && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        bool killed = got->ok() && WIFSIGNALED((*got)->wait_status) && WTERMSIG((*got)->wait_status) == SIGKILL;
        bool group_gone = !background.empty() && gone();
        auto after = run_process(shell("true"));
        bool refused = !after.ok() && after.status().message().find("interrupted") != std::string::npos;
        std::fprintf(stderr, "killed=%d group_gone=%d refused=%d\n", killed, group_gone, refused);
        std::_Exit(killed && group_gone && refused ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "killed=1 group_gone=1 refused=1");
}

TEST(ProcessTest, FindProgramSearchesThePathForExecutableFiles) {
  ScratchDir dir;
  fs::create_directories(dir / "a/tool");  // a directory by that name is not the program
  fs::create_directories(dir / "b");
  std::ofstream(dir / "b/tool") << "#!/bin/sh\n";  // nor is a file that cannot be executed
  fs::permissions(dir / "b/tool", fs::perms::owner_read | fs::perms::owner_write);
  fs::create_directories(dir / "c");
  std::ofstream(dir / "c/tool") << "#!/bin/sh\n";
  fs::permissions(dir / "c/tool", fs::perms::owner_all);
  const std::string path = "::" + (dir / "a").string() + ":" + (dir / "b").string() + ":" + (dir / "c").string();
  EXPECT_EQ(find_program("tool", path), dir / "c/tool");
  EXPECT_EQ(find_program("missing", path), std::nullopt);
  EXPECT_EQ(find_program("/abs/tool", ""), fs::path("/abs/tool"));
}

}  // namespace
}  // namespace quorate
