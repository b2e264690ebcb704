// Running a program by argv, never through a shell: environment, directory, umask, its own process group,
// a deadline and cancellation, output to a descriptor or captured up to a limit, and how it ended.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate {

enum class Stderr {
  kWithStdout,  // to wherever stdout goes (the descriptor, or the captured output)
  kDiscard,     // to /dev/null
};

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is a path: there is no PATH search (see find_program)
  // The complete environment ("NAME=value"); nullopt: the caller's environment is inherited.
  std::optional<std::vector<std::string>> env;
  std::filesystem::path cwd;    // empty: the caller's working directory
  std::optional<mode_t> umask;  // unset: inherited
  std::vector<int> pass_fds;    // left open in the child (the caller still owns and closes them)
  int output_fd = -1;           // stdout goes to this descriptor; -1: captured in ProcessResult::output
  Stderr stderr_to = Stderr::kWithStdout;
  // Captured output only: once more than this many bytes or lines have been read, reading stops and the
  // process group is killed (ProcessEnding::kOutputCut); what was read is kept, possibly past the limit.
  size_t max_output_bytes = std::numeric_limits<size_t>::max();
  size_t max_output_lines = std::numeric_limits<size_t>::max();
  const std::atomic<bool>* cancel = nullptr;  // when it turns true the process group is killed
  // Asked while the process runs (often: it must be cheap, or keep its own pace); when it says true the process
  // group is killed (ProcessEnding::kStopped). A limit the caller watches, such as the disk a step writes.
  std::function<bool()> stop;
  // When the monotonic clock passes it, the process group is killed (ProcessEnding::kTimedOut).
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

enum class ProcessEnding { kExited, kCancelled, kTimedOut, kOutputCut, kStopped };

struct ProcessResult {
  int wait_status = 0;  // of the main process, as waitpid reports it
  ProcessEnding ending = ProcessEnding::kExited;
  std::string output;  // captured stdout (and stderr with kWithStdout); empty with an output_fd
  // It ended on its own with exit status 0.
  bool succeeded() const;
};

// Runs the program with stdin from /dev/null in a new process group led by it, and waits. However it ends —
// on its own, cancelled, timed out, its output cut — every process left in its group is then killed with
// SIGKILL before the main process is reaped (waitid WNOWAIT first, so the group id cannot have been reused),
// so nothing it started in the background outlives it; a process that calls setsid leaves the group and
// escapes. The program starts with no signal blocked. When exec fails the child exits 127 (no such file) or 126. io
// when the process cannot be started or waited for.
Result<ProcessResult> run_process(const ProcessSpec& spec);

// Kills (SIGKILL) the process group of every program run_process is running, in any thread; from then on
// run_process starts none (io "interrupted"). For a command's SIGINT/SIGTERM handling: each program leads a
// group of its own, not the terminal's foreground group, so Ctrl-C reaches none of them, and they would
// outlive the command (and write into temporaries removed under them).
void kill_running_processes();

// "exited with status N", "was killed by signal N" or "ended with wait status N".
std::string describe_wait_status(int wait_status);

// The first executable regular file named `name` in the directories of `search_path` (separated by ':', as
// in $PATH; empty entries skipped), or nullopt. A name holding a '/' is returned as it is. The caller reads
// the environment and passes $PATH: libraries do not.
std::optional<std::filesystem::path> find_program(std::string_view name, std::string_view search_path);

}  // namespace quorate
