// run_step: bwrap (or the command itself) run by core's process runner, umask 022, output to the build log.
#include "quorate/builder/sandbox.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <optional>

#include "quorate/core/disk_usage.h"
#include "quorate/core/file.h"
#include "quorate/core/process.h"

namespace quorate::builder {
namespace {

// The read-only host directories a toolchain needs; /bin, /lib… are symlinks on merged-/usr systems and are
// recreated as symlinks, so that the sandbox looks like the host. Of /etc only what programs need to start
// (Debian's alternatives symlinks, the dynamic linker's cache): never the whole of it, which holds shadow,
// node keys (/etc/quorate) and other secrets of the host (issue 11, item 11).
std::vector<std::string> host_mounts() {
  std::vector<std::string> args;
  for (const char* d : {"/usr", "/opt", "/etc/alternatives"}) {
    if (std::filesystem::is_directory(d)) args.insert(args.end(), {"--ro-bind", d, d});
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file("/etc/ld.so.cache", ec)) {
    args.insert(args.end(), {"--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"});
  }
  for (const char* d : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
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

struct Prepared {
  std::vector<std::string> argv;
  std::vector<std::string> envp;  // only used without a sandbox
  std::string cwd;
  std::vector<int> pass_fds;  // inherited by the child (bwrap reads the synthesized /etc files from them)
};

// A memory file holding `text`, positioned at its start, for bwrap's --ro-bind-data.
Result<int> data_fd(const char* name, std::string_view text) {
  int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return Status::from_errno(std::string("memfd_create ") + name, errno);
  Status s = write_all(fd, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, name);
  if (s.ok() && ::lseek(fd, 0, SEEK_SET) != 0) s = Status::from_errno(std::string("lseek ") + name, errno);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  return fd;
}

Status add_etc_files(Prepared& p) {
  const std::pair<const char*, const char*> files[] = {{"/etc/passwd", kSandboxPasswd},
                                                       {"/etc/group", kSandboxGroup},
                                                       {"/etc/hosts", kSandboxHosts},
                                                       {"/etc/nsswitch.conf", kSandboxNsswitch}};
  for (const auto& [dest, text] : files) {
    int fd = QR_TRY(data_fd(dest, text));
    p.pass_fds.push_back(fd);
    p.argv.insert(p.argv.end(), {"--perms", "0644", "--ro-bind-data", std::to_string(fd), dest});
  }
  return Status();
}

Result<Prepared> bwrap_prepared(const RunSpec& spec) {
  Prepared p;
  p.cwd = "/";
  auto& a = p.argv;
  a = {spec.bwrap.string(), "--unshare-all", "--die-with-parent", "--new-session",
       "--hostname",        "quorate",       "--clearenv"};
  if (!spec.rootfs.empty()) {
    a.insert(a.end(), {"--ro-bind", spec.rootfs.string(), "/"});
  } else {
    auto mounts = host_mounts();
    a.insert(a.end(), mounts.begin(), mounts.end());
  }
  Status s = spec.rootfs.empty() ? add_etc_files(p) : Status();
  if (!s.ok()) {
    for (int fd : p.pass_fds) ::close(fd);
    return s;
  }
  a.insert(a.end(), {"--dev", "/dev", "--proc", "/proc", "--bind", spec.tmp_dir.string(), "/tmp", "--bind",
                     spec.src_dir.string(), kSandboxSrc, "--bind", spec.out_dir.string(), kSandboxOut});
  for (const auto& [k, v] : spec.env) a.insert(a.end(), {"--setenv", k, v});
  a.insert(a.end(), {"--setenv", "OUT", kSandboxOut});
  // bwrap's own root is a writable tmpfs (it holds /etc's mount points and files): read-only, like the rest.
  if (spec.rootfs.empty()) a.insert(a.end(), {"--remount-ro", "/"});
  std::string cwd = std::string(kSandboxSrc) + (spec.workdir.empty() ? "" : "/" + spec.workdir);
  a.insert(a.end(), {"--chdir", cwd, "--"});
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return p;
}

Result<Prepared> prepare(const RunSpec& spec) {
  if (spec.sandbox == Sandbox::kBubblewrap) return bwrap_prepared(spec);
  Prepared p;
  p.argv = spec.argv;
  for (const auto& [k, v] : spec.env) p.envp.push_back(k + "=" + v);
  p.envp.push_back("OUT=" + spec.out_dir.string());
  p.cwd = (spec.workdir.empty() ? spec.src_dir : spec.src_dir / spec.workdir).string();
  return p;
}

// The process the step runs as: bwrap (with an empty environment) or the command itself, with its limits.
ProcessSpec process_spec(Prepared& p, const RunSpec& spec, int output_fd) {
  ProcessSpec ps;
  ps.argv = p.argv;
  ps.env = p.envp;
  ps.cwd = p.cwd;
  ps.umask = 022;
  ps.pass_fds = p.pass_fds;
  ps.output_fd = output_fd;
  ps.cancel = spec.cancel;
  ps.deadline = spec.deadline;
  return ps;
}

// Runs the prepared step and closes the descriptors it passed to bwrap.
Result<ProcessResult> spawn(Prepared p, const RunSpec& spec, int output_fd, std::function<bool()> stop = {}) {
  ProcessSpec ps = process_spec(p, spec, output_fd);
  ps.stop = std::move(stop);
  auto result = run_process(ps);
  for (int fd : p.pass_fds) ::close(fd);
  return result;
}

// execve needs a path: resolve argv[0] against the step's PATH when running on the host.
void resolve_program(RunSpec& spec) {
  if (spec.argv.empty()) return;
  auto it = spec.env.find("PATH");
  std::string path = it == spec.env.end() ? "/usr/bin:/bin" : it->second;
  if (auto found = find_program(spec.argv[0], path)) spec.argv[0] = found->string();
}

}  // namespace

const char* sandbox_name(Sandbox s) {
  switch (s) {
    case Sandbox::kAuto:
      return "auto";
    case Sandbox::kBubblewrap:
      return "bubblewrap";
    case Sandbox::kNone:
      return "none";
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
    auto spawned = spawn(Prepared{argv, {}, "/", {}}, RunSpec{}, null_fd);
    ::close(null_fd);
    if (!spawned.ok() || !spawned->succeeded()) {
      why = "bubblewrap cannot create namespaces here (unprivileged user namespaces disabled?)";
    }
  }
  if (why.empty()) return Sandbox::kBubblewrap;
  if (requested == Sandbox::kAuto) return Sandbox::kNone;
  return Status::unsupported(why +
                             "; refusing to run build steps unsandboxed (pass --no-sandbox to run them on the "
                             "host, see docs/decisions.md)");
}

Status run_step(const RunSpec& spec_in) {
  RunSpec spec = spec_in;
  if (spec.sandbox == Sandbox::kNone) resolve_program(spec);
  int fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno("open build log " + spec.log.string(), errno);
  auto prepared = prepare(spec);
  if (!prepared.ok()) {
    ::close(fd);
    return prepared.status();
  }
  std::optional<DiskWatch> disk;
  if (spec.max_growth > 0) {
    std::vector<std::filesystem::path> paths = spec.watched;
    paths.push_back(spec.log);
    disk.emplace(std::move(paths), spec.max_growth);
  }
  auto spawned = spawn(std::move(*prepared), spec, fd,
                       disk ? std::function<bool()>([&] { return disk->exceeded(); }) : std::function<bool()>());
  ::close(fd);
  if (!spawned.ok()) return spawned.status();
  if (spawned->ending == ProcessEnding::kCancelled) return Status::internal("build cancelled");
  if (spawned->ending == ProcessEnding::kStopped) {
    return Status::bad_input("wrote more than " + std::to_string(spec.max_growth) +
                             " bytes to disk while it ran (its output, /tmp and log together; all its processes "
                             "were killed; twice the output limit: quorate build --max-output-bytes, node "
                             "build.max_output_bytes)");
  }
  const int status = spawned->wait_status;
  std::string what = describe_wait_status(status);
  if (spawned->ending == ProcessEnding::kTimedOut) {
    what = "timed out (all its processes were killed)";
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return Status();
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) what += " (command not found?)";
  return Status::bad_input(what + "; last lines of the build log " + spec.log.string() + ":\n" + log_tail(spec.log));
}

std::string run_for_line(RunSpec spec) {
  auto temp = TempFile::create(spec.tmp_dir);
  if (!temp.ok()) return "";
  if (spec.sandbox == Sandbox::kNone) resolve_program(spec);
  auto prepared = prepare(spec);
  if (!prepared.ok()) return "";
  auto spawned = spawn(std::move(*prepared), spec, temp->fd());
  if (!spawned.ok() || !spawned->succeeded()) return "";
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
  if (text.empty()) return text;
  size_t pos = text.size();
  if (!text.empty() && text.back() == '\n') --pos;
  for (int i = 0; i < lines && pos != std::string::npos && pos > 0; ++i) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace quorate::builder
