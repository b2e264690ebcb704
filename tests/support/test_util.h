// Helpers shared by tests: scratch directories, running commands, reading files.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

namespace quorate::testing {

// A fresh directory under the system temp dir, removed with everything in it when the object dies.
class ScratchDir {
 public:
  ScratchDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "quorate-test.XXXXXX").string();
    path_ = ::mkdtemp(templ.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// Runs `command` with /bin/sh; returns its exit status and combined output.
inline CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// What this process has read through read(2) and its kin so far (rchar of /proc/self/io): a count of work that
// does not depend on how busy the machine is, unlike a time.
inline uint64_t bytes_read_by_this_process() {
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return 0;
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `bytes` to `path`, making its parent directories.
inline void spit(const std::filesystem::path& path, const std::string& bytes) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// Shell-quotes a path or word.
inline std::string sh(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// The quorate binary under test and the source tree: $QUORATE_BIN / $QUORATE_SOURCE_DIR when set, else the
// paths tests/CMakeLists.txt compiles in.
inline std::string quorate_bin() {
  if (const char* p = std::getenv("QUORATE_BIN"); p && *p) return p;
  return QUORATE_TEST_BIN;
}
// Whether something accepts TCP connections on 127.0.0.1:`port` (a daemon a test started is up).
inline bool port_answers(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// A shell command running the quorate binary under test with `args` (already quoted as the shell needs).
// argv for `git -C repo ARGS…` with a fixed identity and dates and no user or system git config: a commit made
// with it has the same id on every machine.
inline std::vector<std::string> git_argv(const std::filesystem::path& repo, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "GIT_CONFIG_GLOBAL=/dev/null",
                                   "GIT_CONFIG_NOSYSTEM=1",
                                   "GIT_AUTHOR_NAME=t",
                                   "GIT_AUTHOR_EMAIL=t@example.org",
                                   "GIT_COMMITTER_NAME=t",
                                   "GIT_COMMITTER_EMAIL=t@example.org",
                                   "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
                                   "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
                                   "git",
                                   "-C",
                                   repo.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

inline std::string quorate_command(const std::string& args) { return sh(quorate_bin()) + " " + args; }
inline std::filesystem::path source_dir() {
  if (const char* p = std::getenv("QUORATE_SOURCE_DIR"); p && *p) return p;
  return QUORATE_TEST_SOURCE_DIR;
}

// Calls `read` on a thread of its own and returns what it returns. When it has not returned after 10 s (it is
// waiting for someone to write into the FIFO at `fifo`), the test fails, and the FIFO is opened for writing
// and closed until it returns (each time lets a waiting open return and a waiting read see the end).
template <typename Read>
auto without_waiting_on_fifo(const std::filesystem::path& fifo, Read read) {
  auto reading = std::async(std::launch::async, read);
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "waited for someone to write into the FIFO " << fifo;
    do {
      int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0) ::close(w);
    } while (reading.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready);
  }
  return reading.get();
}
}  // namespace quorate::testing
