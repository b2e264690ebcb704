// Test harness for end-to-end tests: child processes cleaned up by PID, free loopback ports, bounded waits.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_util.h"

namespace quorate::e2e {

using SteadyClock = std::chrono::steady_clock;

using quorate::testing::quorate_bin;

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A TCP port on 127.0.0.1 reserved for the rest of this test process. Releasing the probe socket (as this
// once did) let the kernel hand the same port to another test's connect() or bind(0) before the daemon
// bound it ("Address already in use", seen in CI). The probe stays bound, never listening, with
// SO_REUSEADDR: the kernel then gives the port to no bind(0) and no outgoing connection, while a daemon
// that binds it with SO_REUSEADDR (libzmq, cpp-httplib and Go listeners all do) still can.
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);  // fd is deliberately kept open: it is the reservation
}

inline std::string loopback(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

// Polls `pred` every 20 ms until it holds or `limit` passes.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
  auto deadline = SteadyClock::now() + limit;
  while (SteadyClock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// A child process with stdout and stderr in files. Killed (SIGKILL) and reaped on destruction if still running.
class Process {
 public:
  Process(std::vector<std::string> argv, std::filesystem::path out, std::filesystem::path err)
      : out_(std::move(out)), err_(std::move(err)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Process() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      wait(std::chrono::seconds(10));
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (exited_) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = status;
    }
    return !exited_;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  // The exit code (or 128 + signal), or nullopt if still running after `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    if (!wait_until([&] { return !running(); }, limit)) return std::nullopt;
    if (WIFEXITED(status_)) return WEXITSTATUS(status_);
    return 128 + WTERMSIG(status_);
  }
  std::string out() const { return read_text(out_); }
  std::string err() const { return read_text(err_); }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
};

// Runs a command to completion (bounded); returns exit code and stdout.
struct Ran {
  int code = -1;
  std::string out, err;
};
inline Ran run(std::vector<std::string> argv, const std::filesystem::path& dir,
               std::chrono::milliseconds limit = std::chrono::seconds(120)) {
  static int n = 0;
  auto tag = std::to_string(::getpid()) + "-" + std::to_string(n++);
  auto out = dir / ("run-" + tag + ".out"), err = dir / ("run-" + tag + ".err");
  Ran r;
  {
    Process p(std::move(argv), out, err);
    auto code = p.wait(limit);
    r.code = code ? *code : -1;
  }
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

}  // namespace quorate::e2e
