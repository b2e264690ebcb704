// run_step: fork + exec of bwrap (or of the command itself), umask 022, output to the build log.
#include "quorate/builder/sandbox.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "quorate/core/file.h"

namespace quorate::builder {
namespace {

// The read-only host directories a toolchain needs; /bin, /lib… are symlinks on merged-/usr systems and are
// recreated as symlinks, so that the sandbox looks like the host.
std::vector<std::string> host_mounts() {
  std::vector<std::string> args;
  for (const char* d : {"/usr", "/etc", "/opt"}) {
    if (std::filesystem::is_directory(d)) args.insert(args.end(), {"--ro-bind", d, d});
  }
  for (const char* d : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code ec;
    auto st = std::filesystem::symlink_status(d, ec);
    if (ec) continue;
    if (std::filesystem::is_symlink(st)) {
      args.insert(args.end(), {"--symlink", std::filesystem::read_symlink(d, ec).string(), d});
    } else if (std::filesystem::is_directory(st)) {
      args.insert(args.end(), {"--ro-bind", d, d});
    }
  }
  return args;
}

std::vector<std::string> bwrap_argv(const RunSpec& spec) {
  std::vector<std::string> a = {spec.bwrap.string(), "--unshare-all", "--die-with-parent", "--new-session",
                                "--hostname", "quorate", "--clearenv"};
  auto mounts = host_mounts();
  a.insert(a.end(), mounts.begin(), mounts.end());
  a.insert(a.end(), {"--dev", "/dev", "--proc", "/proc", "--bind", spec.tmp_dir.string(), "/tmp", "--bind",
                     spec.src_dir.string(), kSandboxSrc, "--bind", spec.out_dir.string(), kSandboxOut});
  for (const auto& [k, v] : spec.env) a.insert(a.end(), {"--setenv", k, v});
  a.insert(a.end(), {"--setenv", "OUT", kSandboxOut});
  std::string cwd = std::string(kSandboxSrc) + (spec.workdir.empty() ? "" : "/" + spec.workdir);
  a.insert(a.end(), {"--chdir", cwd, "--"});
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

struct Prepared {
  std::vector<std::string> argv;
  std::vector<std::string> envp;  // only used without a sandbox
  std::string cwd;
};

Prepared prepare(const RunSpec& spec) {
  Prepared p;
  if (spec.sandbox == Sandbox::kBubblewrap) {
    p.argv = bwrap_argv(spec);
    p.cwd = "/";
  } else {
    p.argv = spec.argv;
    for (const auto& [k, v] : spec.env) p.envp.push_back(k + "=" + v);
    p.envp.push_back("OUT=" + spec.out_dir.string());
    p.cwd = (spec.workdir.empty() ? spec.src_dir : spec.src_dir / spec.workdir).string();
  }
  return p;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Forks and execs; the child only calls async-signal-safe functions. Returns the wait status.
Result<int> spawn(Prepared p, int out_fd, const std::atomic<bool>* cancel) {
  auto argv = c_strings(p.argv);
  auto envp = c_strings(p.envp);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return Status::from_errno("open /dev/null", errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(null_fd);
    return Status::from_errno("fork", errno);
  }
  if (pid == 0) {
    ::umask(022);
    ::setpgid(0, 0);
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    if (::chdir(p.cwd.c_str()) != 0) _exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    if (errno == ENOENT) _exit(127);
    _exit(126);
  }
  ::close(null_fd);
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Status::from_errno("waitpid", errno);
    if (cancel && cancel->load()) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return status;
}

// execve needs a path: resolve argv[0] against the step's PATH when running on the host.
void resolve_program(RunSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].find('/') != std::string::npos) return;
  auto it = spec.env.find("PATH");
  std::string path = it == spec.env.end() ? "/usr/bin:/bin" : it->second;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t colon = path.find(':', pos);
    if (colon == std::string::npos) colon = path.size();
    std::filesystem::path candidate = std::filesystem::path(path.substr(pos, colon - pos)) / spec.argv[0];
    if (::access(candidate.c_str(), X_OK) == 0) {
      spec.argv[0] = candidate.string();
      return;
    }
    pos = colon + 1;
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

}  // namespace

const char* sandbox_name(Sandbox s) {
  switch (s) {
    case Sandbox::kAuto: return "auto";
    case Sandbox::kBubblewrap: return "bubblewrap";
    case Sandbox::kNone: return "none";
  }
  return "?";
}

Result<Sandbox> resolve_sandbox(Sandbox requested, const std::filesystem::path& bwrap) {
  if (requested == Sandbox::kNone) return Sandbox::kNone;
  std::string why;
  if (::access(bwrap.c_str(), X_OK) != 0) {
    why = bwrap.string() + " is not installed (apt-get install bubblewrap)";
  } else {
    std::vector<std::string> argv = {bwrap.string(), "--unshare-all", "--die-with-parent"};
    auto mounts = host_mounts();
    argv.insert(argv.end(), mounts.begin(), mounts.end());
    argv.insert(argv.end(), {"--", "/bin/true"});
    int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    auto status = spawn(Prepared{argv, {}, "/"}, null_fd, nullptr);
    ::close(null_fd);
    if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      why = "bubblewrap cannot create namespaces here (unprivileged user namespaces disabled?)";
    }
  }
  if (why.empty()) return Sandbox::kBubblewrap;
  if (requested == Sandbox::kAuto) return Sandbox::kNone;
  return Status::unsupported(why + "; refusing to run build steps unsandboxed (pass --no-sandbox to run them on the "
                             "host, see docs/decisions.md)");
}

Status run_step(const RunSpec& spec_in) {
  RunSpec spec = spec_in;
  if (spec.sandbox == Sandbox::kNone) resolve_program(spec);
  int fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno("open build log " + spec.log.string(), errno);
  auto status = spawn(prepare(spec), fd, spec.cancel);
  ::close(fd);
  if (!status.ok()) return status.status();
  if (spec.cancel && spec.cancel->load()) return Status::internal("build cancelled");
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return Status();
  std::string what = describe_status(*status);
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 127) what += " (command not found?)";
  return Status::bad_input(what + "; last lines of the build log " + spec.log.string() + ":\n" + log_tail(spec.log));
}

std::string run_for_line(RunSpec spec) {
  auto temp = TempFile::create(spec.tmp_dir);
  if (!temp.ok()) return "";
  if (spec.sandbox == Sandbox::kNone) resolve_program(spec);
  auto status = spawn(prepare(spec), temp->fd(), spec.cancel);
  if (!status.ok() || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) return "";
  char buf[512];
  ssize_t n = ::pread(temp->fd(), buf, sizeof buf, 0);
  if (n <= 0) return "";
  std::string line(buf, static_cast<size_t>(n));
  return line.substr(0, line.find('\n'));
}

std::string log_tail(const std::filesystem::path& log, int lines) {
  std::ifstream in(log, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  auto size = static_cast<int64_t>(in.tellg());
  int64_t start = size > 4096 ? size - 4096 : 0;
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = text.size();
  if (!text.empty() && text.back() == '\n') --pos;
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace quorate::builder
