// run_process: fork + exec by argv in a new process group, a watch loop for the deadline, cancellation and
// captured output, then the group killed and the main process reaped.
#include "quorate/core/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <set>
#include <thread>

namespace quorate {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr int kWatchIntervalMs = 5;

// The process groups run_process is running (see kill_running_processes). A group stays listed until its
// main process is about to be reaped: until then its id cannot be reused.
std::mutex g_running_mutex;
std::set<pid_t> g_running;  // under g_running_mutex
bool g_killed_all = false;  // by kill_running_processes(); under g_running_mutex

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The descriptors the child's stdin, stdout and stderr come from; the parent closes them after the fork,
// except output_fd, which the caller owns.
struct ChildFds {
  int in = -1;             // /dev/null
  int out = -1;            // output_fd or the write end of the capture pipe
  int err = -1;            // `out`, or /dev/null
  int capture = -1;        // the read end of the capture pipe, or -1
  std::vector<int> owned;  // closed by the parent after the fork
  ~ChildFds() {
    for (int fd : owned) ::close(fd);
  }
};

Status open_child_fds(const ProcessSpec& spec, ChildFds& fds) {
  fds.in = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fds.in < 0) return Status::from_errno("open /dev/null", errno);
  fds.owned.push_back(fds.in);
  if (spec.output_fd >= 0) {
    fds.out = spec.output_fd;
  } else {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::from_errno("create a pipe for " + spec.argv[0], errno);
    fds.capture = pipe_fds[0];
    fds.out = pipe_fds[1];
    fds.owned.push_back(pipe_fds[1]);
  }
  fds.err = spec.stderr_to == Stderr::kDiscard ? fds.in : fds.out;
  return Status();
}

// The child after fork: only async-signal-safe calls. It leads a new process group that holds everything it
// starts, so that the group can be killed as a whole.
[[noreturn]] void exec_child(const ProcessSpec& spec, const ChildFds& fds, char* const* argv, char* const* envp) {
  // A command that takes its signals on a thread of its own blocks them in every other thread, and a mask
  // survives exec: the program would start unable to be interrupted or terminated.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (spec.umask) ::umask(*spec.umask);
  ::setpgid(0, 0);
  for (int fd : spec.pass_fds) ::fcntl(fd, F_SETFD, 0);
  ::dup2(fds.in, 0);
  ::dup2(fds.out, 1);
  ::dup2(fds.err, 2);
  if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) _exit(126);
  if (envp != nullptr) {
    ::execve(argv[0], argv, envp);
  } else {
    ::execv(argv[0], argv);
  }
  _exit(errno == ENOENT ? 127 : 126);
}

// True once `pid` has ended; it stays unreaped (WNOWAIT), so its process group id cannot be reused before
// the group is killed.
Result<bool> has_ended(pid_t pid) {
  siginfo_t info = {};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno == EINTR) return false;
    return Status::from_errno("waitid", errno);
  }
  return info.si_pid == pid;
}

// The captured output as it is read: stops at end of file or past the spec's limits.
struct Capture {
  int fd = -1;
  size_t lines = 0;
  bool cut = false;

  ~Capture() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  // Waits up to `wait_ms` for output and reads one chunk of it.
  void read_some(int wait_ms, const ProcessSpec& spec, std::string& out) {
    struct pollfd p = {fd, POLLIN, 0};
    int ready = ::poll(&p, 1, wait_ms);
    if (ready <= 0) return;  // nothing yet (or EINTR): the watch loop comes back
    char buf[8192];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) return close();  // end of file, or a pipe error: the output is what came so far
    out.append(buf, static_cast<size_t>(n));
    lines += static_cast<size_t>(std::count(buf, buf + n, '\n'));
    if (lines > spec.max_output_lines || out.size() > spec.max_output_bytes) {
      cut = true;
      close();
    }
  }
  // After the group was killed: what is already in the pipe, without waiting for a writer that escaped.
  void drain(const ProcessSpec& spec, std::string& out) {
    while (fd >= 0) {
      size_t before = out.size();
      read_some(0, spec, out);
      if (out.size() == before) break;
    }
  }
};

// Watches the running process until it ends, killing its group when it is cancelled, times out or its
// captured output is cut.
Status watch(pid_t pid, const ProcessSpec& spec, Capture& capture, ProcessResult& result) {
  while (true) {
    if (capture.fd >= 0) {
      capture.read_some(kWatchIntervalMs, spec, result.output);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(kWatchIntervalMs));
    }
    auto ended = has_ended(pid);
    if (!ended.ok()) return ended.status();
    if (*ended) return Status();
    if (result.ending == ProcessEnding::kExited) {
      if (capture.cut) {
        result.ending = ProcessEnding::kOutputCut;
      } else if (spec.cancel && spec.cancel->load()) {
        result.ending = ProcessEnding::kCancelled;
      } else if (spec.deadline && SteadyClock::now() >= *spec.deadline) {
        result.ending = ProcessEnding::kTimedOut;
      } else if (spec.stop && spec.stop()) {
        result.ending = ProcessEnding::kStopped;
      }
    }
    if (result.ending != ProcessEnding::kExited) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  }
}

}  // namespace

bool ProcessResult::succeeded() const {
  return ending == ProcessEnding::kExited && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return Status::usage("no program to run");
  std::vector<std::string> args = spec.argv;
  std::vector<std::string> env = spec.env.value_or(std::vector<std::string>{});
  auto argv = c_strings(args);
  auto envp = c_strings(env);
  Capture capture;
  pid_t pid;
  {
    // Forked and listed in one step, so that kill_running_processes finds either no child or its group.
    std::lock_guard lock(g_running_mutex);
    if (g_killed_all) return Status::io("interrupted: not starting " + spec.argv[0]);
    ChildFds fds;
    QR_RETURN_IF_ERROR(open_child_fds(spec, fds));
    capture.fd = fds.capture;
    pid = ::fork();
    if (pid == 0) exec_child(spec, fds, argv.data(), spec.env ? envp.data() : nullptr);
    if (pid < 0) return Status::from_errno("start " + spec.argv[0], errno);
    ::setpgid(pid, pid);  // also here: the group must exist before the first kill(-pid)
    g_running.insert(pid);
  }
  ProcessResult result;
  Status watched = watch(pid, spec, capture, result);
  if (!watched.ok()) ::kill(-pid, SIGKILL);
  ::kill(-pid, SIGKILL);  // background processes it left behind (issue 11, item 14)
  if (!capture.cut) capture.drain(spec, result.output);
  if (capture.cut && result.ending == ProcessEnding::kExited) result.ending = ProcessEnding::kOutputCut;
  {
    std::lock_guard lock(g_running_mutex);
    g_running.erase(pid);
  }
  while (::waitpid(pid, &result.wait_status, 0) < 0) {
    if (errno != EINTR) return Status::from_errno("wait for " + spec.argv[0], errno);
  }
  QR_RETURN_IF_ERROR(watched);
  return result;
}

void kill_running_processes() {
  std::lock_guard lock(g_running_mutex);
  g_killed_all = true;
  for (pid_t pid : g_running) ::kill(-pid, SIGKILL);
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

std::optional<std::filesystem::path> find_program(std::string_view name, std::string_view search_path) {
  if (name.find('/') != std::string_view::npos) return std::filesystem::path(name);
  size_t start = 0;
  while (start <= search_path.size()) {
    size_t end = std::min(search_path.find(':', start), search_path.size());
    std::string_view dir = search_path.substr(start, end - start);
    start = end + 1;
    if (dir.empty()) continue;
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

}  // namespace quorate
