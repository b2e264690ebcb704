// Running a recipe's `run` step: bubblewrap (fixed paths, no network, cleared env) or, when asked, the host.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::builder {

enum class Sandbox {
  kAuto,        // bubblewrap when it works on this machine, else kNone (recorded in the build result)
  kBubblewrap,  // bubblewrap or refuse to build
  kNone,        // run on the host: cleared env, but real paths, network and file system (see docs/decisions.md)
};

const char* sandbox_name(Sandbox s);  // "auto", "bubblewrap", "none"

// Where a step runs. Inside bubblewrap the checkout is at /src and the output directory at /out; on the
// host they are the real directories. Either way $OUT names the output directory. Of the host's /etc a
// sandboxed step sees only /etc/alternatives and /etc/ld.so.cache (no secrets there) plus a synthesized
// passwd, group, hosts and nsswitch.conf (kSandboxPasswd…): never shadow, keys or other host configuration.
inline constexpr char kSandboxSrc[] = "/src";
inline constexpr char kSandboxOut[] = "/out";

struct RunSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // the complete environment (OUT is added)
  std::filesystem::path src_dir;           // the fresh checkout (writable, thrown away after the step)
  std::filesystem::path out_dir;           // empty directory; its content becomes the layer
  std::filesystem::path tmp_dir;           // empty directory mounted at /tmp (and HOME)
  std::string workdir;                     // relative to the checkout
  std::filesystem::path log;               // stdout and stderr are appended here
  Sandbox sandbox = Sandbox::kBubblewrap;  // kBubblewrap or kNone (resolve kAuto first)
  std::filesystem::path bwrap = "/usr/bin/bwrap";
  const std::atomic<bool>* cancel = nullptr;  // when it turns true the step is killed
  // When the monotonic clock passes it, every process of the step is killed and run_step fails ("timed out").
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // When set (bubblewrap only): the builder image's root file system, bound read-only as `/`; then no host
  // path is bound at all (no /usr, /etc…), only /src, /out, /tmp, a minimal /dev and /proc.
  std::filesystem::path rootfs;
  // Where the step writes (its output or layer, /tmp, its checkout; its log is added): while it runs, the disk
  // they take may grow by at most `max_growth` bytes (0: not watched). Past that every process of the step is
  // killed and run_step fails naming the bound: the output limit is checked once the step has ended, and a
  // step could otherwise fill the disk until its timeout. Walked at most every 250 ms, and spending at most a
  // tenth of the step's time on it.
  std::vector<std::filesystem::path> watched;
  uint64_t max_growth = 0;
};

// What a step's directories may grow by while it runs (RunSpec::max_growth): twice the output limit, room for
// temporaries it removes before it ends.
inline uint64_t growth_bound(uint64_t max_output_bytes) {
  return max_output_bytes > UINT64_MAX / 2 ? UINT64_MAX : 2 * max_output_bytes;
}

// The synthesized /etc files of a sandboxed step (root and nobody; localhost; files only).
inline constexpr char kSandboxPasswd[] =
    "root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
inline constexpr char kSandboxGroup[] = "root:x:0:\nnogroup:x:65534:\n";
inline constexpr char kSandboxHosts[] = "127.0.0.1\tlocalhost quorate\n::1\tlocalhost\n";
inline constexpr char kSandboxNsswitch[] = "passwd: files\ngroup: files\nhosts: files\n";

// Resolves kAuto, and checks that bubblewrap can create its namespaces here. unsupported with the reason
// when kBubblewrap is asked for and does not work.
Result<Sandbox> resolve_sandbox(Sandbox requested, const std::filesystem::path& bwrap);

// Runs the step with umask 022 in its own process group (without a sandbox) or PID namespace (bubblewrap) and
// waits. When the step's main process ends, is cancelled or times out, every process left in its group is
// killed, so nothing the step started in the background outlives it (a process that leaves the group with
// setsid escapes on the host: --no-sandbox trusts the recipe). bad_input "exited with status N" (or "killed
// by signal N", or "timed out") plus the log's last lines when the command fails; io when it cannot start.
Status run_step(const RunSpec& spec);

// Runs `argv` like run_step and returns the first line of its stdout ("" when it fails): for tool versions.
std::string run_for_line(RunSpec spec);

// The last `lines` lines of a file (at most 4 KiB).
std::string log_tail(const std::filesystem::path& log, int lines = 20);

}  // namespace quorate::builder
