// ImageStore::pull: an image pinned by digest, copied from its registry by skopeo (argv, no shell, bounded by
// a timeout) into a temporary layout under the store, checked against the pin, then imported byte for byte.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/core/temporaries.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/normalize/image_files.h"
#include "store_internal.h"

namespace quorate::imagestore {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

constexpr size_t kMaxStderr = 16 << 10;

struct Reference {
  std::string name;    // without tag or digest: what skopeo is given
  std::string digest;  // the pin
  std::string shown;   // the reference as given, without the digest (the stored ref name)
};

// "NAME[:TAG]@sha256:HEX"; a tag alone (or no digest) is bad_input.
Result<Reference> parse_reference(const std::string& ref) {
  auto at = ref.find('@');
  if (at == std::string::npos) {
    return Status::bad_input("image reference " + ref + " is not pinned by digest: pull NAME@sha256:HEX (a tag alone names no fixed image)");
  }
  Reference r;
  r.shown = ref.substr(0, at);
  r.digest = ref.substr(at + 1);
  if (!check_digest(r.digest).ok()) return Status::bad_input("image reference " + ref + ": " + r.digest + " is not a sha256:HEX digest");
  auto slash = r.shown.rfind('/');
  auto colon = r.shown.rfind(':');
  // A colon after the last slash starts a tag (one before it belongs to host:port), dropped: skopeo
  // refuses a tag and a digest together, and the digest is what counts.
  r.name = colon != std::string::npos && (slash == std::string::npos || colon > slash) ? r.shown.substr(0, colon) : r.shown;
  if (r.name.empty()) return Status::bad_input("image reference " + ref + " has no name");
  return r;
}

struct ChildResult {
  int wait_status = 0;
  bool timed_out = false;
  std::string stderr_text;
};

// Runs argv (argv[0] a path) in `cwd`, in its own process group, stdin and stdout on /dev/null, stderr
// captured (its first kMaxStderr bytes); the whole group is killed at the deadline.
Result<ChildResult> run_child(const std::vector<std::string>& argv, const fs::path& cwd, std::chrono::seconds timeout) {
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) return Status::from_errno("create a pipe for " + argv[0], errno);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    ::setpgid(0, 0);
    int null = ::open("/dev/null", O_RDWR);
    if (null < 0 || ::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(err[1], 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(err[1]);
  if (pid < 0) {
    ::close(err[0]);
    return Status::from_errno("start " + argv[0], fork_errno);
  }
  ::setpgid(pid, pid);
  ChildResult out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      out.timed_out = true;
      break;
    }
    pollfd p{err[0], POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.stderr_text.size() < kMaxStderr) out.stderr_text.append(buf, std::min(static_cast<size_t>(n), kMaxStderr - out.stderr_text.size()));
  }
  ::close(err[0]);
  if (out.timed_out) ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &out.wait_status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

std::string describe_exit(const ChildResult& r, std::chrono::seconds timeout) {
  if (r.timed_out) return "still ran after " + std::to_string(timeout.count()) + " s and was killed";
  if (WIFSIGNALED(r.wait_status)) return "was killed by signal " + std::to_string(WTERMSIG(r.wait_status));
  return "exited with status " + std::to_string(WEXITSTATUS(r.wait_status));
}

// The layout skopeo wrote must list exactly the pinned manifest; anything else names both digests.
Status check_pulled(const fs::path& layout, const Reference& ref, const std::string& shown) {
  auto bytes = QR_TRY(read_file(layout / "index.json", internal::kMaxJsonBytes));
  auto index = QR_TRY(internal::parse_json(bytes, "the index.json skopeo wrote"));
  std::vector<std::string> got;
  for (const auto& i : internal::images_of(index)) got.push_back(i.digest);
  if (got.size() == 1 && got[0] == ref.digest) return Status();
  std::string list;
  for (const auto& g : got) list += (list.empty() ? "" : ", ") + g;
  return Status::bad_input("pulled " + shown + ": the registry gave manifest " + (list.empty() ? "(none)" : list) +
                           ", not the pinned " + ref.digest + " (an index pins several platforms: pin one platform's "
                           "manifest); nothing was stored");
}

}  // namespace

Result<StoredImage> ImageStore::pull(const PullOptions& options) {
  auto ref = QR_TRY(parse_reference(options.reference));
  std::error_code ec;
  if (options.skopeo.empty() || !fs::is_regular_file(options.skopeo, ec)) {
    return Status::not_found("skopeo is not installed (" + (options.skopeo.empty() ? std::string("not on PATH") : options.skopeo.string()) +
                             "): `apt-get install skopeo` (Debian package skopeo) to pull images");
  }
  auto tmp = QR_TRY(TempDir::create(internal::temp_dir(dir_), "pull."));
  std::vector<std::string> argv = {options.skopeo.string(), "copy", "--quiet", "--preserve-digests"};
  if (options.insecure_registry) argv.push_back("--src-tls-verify=false");
  argv.push_back("docker://" + ref.name + "@" + ref.digest);
  argv.push_back("oci:layout");  // relative to the child's working directory: an oci: path cannot hold ':'
  if (options.progress) options.progress("copying " + options.reference + " with skopeo");
  auto run = QR_TRY(run_child(argv, tmp.path(), options.timeout));
  if (run.timed_out || !WIFEXITED(run.wait_status) || WEXITSTATUS(run.wait_status) != 0) {
    std::string err = run.stderr_text;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Status::io("pull " + options.reference + ": skopeo " + describe_exit(run, options.timeout) +
                      (err.empty() ? "" : ": " + err) + "; nothing was stored");
  }
  fs::path layout = tmp.path() / "layout";
  QR_RETURN_IF_ERROR(check_pulled(layout, ref, ref.shown));
  if (options.progress) options.progress("checking every blob against its digest and storing it");
  auto files = QR_TRY(normalize::ImageFiles::open_dir(layout));
  auto lock = QR_TRY(internal::FileLock::acquire(dir_ / ".lock"));
  auto imported = QR_TRY(internal::import_oci_files(dir_, *files, "pulled " + options.reference));
  imported.at(0).ref_name = ref.shown;
  QR_RETURN_IF_ERROR(internal::add_to_index(dir_, imported));
  return imported.at(0);
}

}  // namespace quorate::imagestore
