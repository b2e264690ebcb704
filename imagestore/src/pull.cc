// ImageStore::pull: an image pinned by digest, copied from its registry by skopeo (argv, no shell, bounded by
// a timeout) into a temporary layout under the store, checked against the pin, then imported byte for byte.
#include <chrono>

#include "quorate/core/file.h"
#include "quorate/core/process.h"
#include "quorate/core/sha256.h"
#include "quorate/core/temporaries.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/normalize/image_files.h"
#include "skopeo.h"
#include "store_internal.h"

namespace quorate::imagestore {
namespace fs = std::filesystem;
using nlohmann::json;
namespace {

constexpr size_t kMaxOutput = 1 << 20;  // skopeo --quiet says little; more is killed

struct Reference {
  std::string name;    // without tag or digest: what skopeo is given
  std::string digest;  // the pin
  std::string shown;   // the reference as given, without the digest (the stored ref name)
};

// "NAME[:TAG]@sha256:HEX"; a tag alone (or no digest) is bad_input.
Result<Reference> parse_reference(const std::string& ref) {
  auto at = ref.find('@');
  if (at == std::string::npos) {
    return Status::bad_input("image reference " + ref +
                             " is not pinned by digest: pull NAME@sha256:HEX (a tag alone names no fixed image)");
  }
  Reference r;
  r.shown = ref.substr(0, at);
  r.digest = ref.substr(at + 1);
  if (!check_digest(r.digest).ok())
    return Status::bad_input("image reference " + ref + ": " + r.digest + " is not a sha256:HEX digest");
  auto slash = r.shown.rfind('/');
  auto colon = r.shown.rfind(':');
  // A colon after the last slash starts a tag (one before it belongs to host:port), dropped: skopeo
  // refuses a tag and a digest together, and the digest is what counts.
  r.name =
      colon != std::string::npos && (slash == std::string::npos || colon > slash) ? r.shown.substr(0, colon) : r.shown;
  if (r.name.empty()) return Status::bad_input("image reference " + ref + " has no name");
  return r;
}

// The layout skopeo wrote must list exactly the pinned manifest; anything else names both digests.
Status check_pulled(const fs::path& layout, const Reference& ref, const std::string& shown) {
  auto bytes = QR_TRY(read_file(layout / "index.json", internal::kMaxJsonBytes));
  auto index = QR_TRY(internal::parse_json(bytes, "the index.json skopeo wrote"));
  std::vector<std::string> got;
  for (const auto& i : QR_TRY(internal::images_of(index, "the index.json skopeo wrote"))) got.push_back(i.digest);
  if (got.size() == 1 && got[0] == ref.digest) return Status();
  std::string list;
  for (const auto& g : got) list += (list.empty() ? "" : ", ") + g;
  return Status::bad_input("pulled " + shown + ": the registry gave manifest " + (list.empty() ? "(none)" : list) +
                           ", not the pinned " + ref.digest +
                           " (an index pins several platforms: pin one platform's "
                           "manifest); nothing was stored");
}

}  // namespace

Result<StoredImage> ImageStore::pull(const PullOptions& options) {
  auto ref = QR_TRY(parse_reference(options.reference));
  std::error_code ec;
  if (options.skopeo.empty() || !fs::is_regular_file(options.skopeo, ec)) {
    return Status::not_found("skopeo is not installed (" +
                             (options.skopeo.empty() ? std::string("not on PATH") : options.skopeo.string()) +
                             "): `apt-get install skopeo` (Debian package skopeo) to pull images");
  }
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  if (options.progress) options.progress("reading the manifest of " + options.reference + " with skopeo");
  auto pinned = QR_TRY(internal::inspect_pinned(options.skopeo, ref.name, ref.digest, options.insecure_registry,
                                                deadline, options.timeout, "pull " + options.reference));
  auto tmp = QR_TRY(TempDir::create(internal::temp_dir(dir_), "pull."));
  DiskWatch watch = internal::copy_watch(tmp.path(), pinned);
  std::vector<std::string> argv = {options.skopeo.string(), "copy", "--quiet", "--preserve-digests"};
  if (options.insecure_registry) argv.push_back("--src-tls-verify=false");
  argv.push_back("docker://" + ref.name + "@" + ref.digest);
  argv.push_back("oci:layout");  // relative to the child's working directory: an oci: path cannot hold ':'
  if (options.progress) options.progress("copying " + options.reference + " with skopeo");
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.cwd = tmp.path();
  spec.max_output_bytes = kMaxOutput;
  spec.deadline = deadline;
  spec.stop = [&] { return watch.exceeded(); };
  auto run = QR_TRY(run_process(spec));
  if (!run.succeeded()) {
    std::string failure = internal::skopeo_failure(run, options.timeout, kMaxOutput, watch.max_growth());
    if (run.ending == ProcessEnding::kStopped)
      return Status::bad_input("pull " + options.reference + ": " + failure + "; nothing was stored");
    return Status::io("pull " + options.reference + ": " + failure + "; nothing was stored");
  }
  fs::path layout = tmp.path() / "layout";
  QR_RETURN_IF_ERROR(check_pulled(layout, ref, ref.shown));
  if (options.progress) options.progress("checking every blob against its digest and storing it");
  auto files = QR_TRY(normalize::ImageFiles::open_dir(layout));
  auto lock = QR_TRY(internal::FileLock::acquire(dir_ / ".lock"));
  internal::NewBlobs added(dir_);  // taken out again unless the pull succeeds
  auto imported = QR_TRY(internal::import_oci_files(dir_, *files, "pulled " + options.reference));
  imported.at(0).ref_name = ref.shown;
  QR_RETURN_IF_ERROR(internal::add_to_index(dir_, imported));
  added.keep();
  return imported.at(0);
}

}  // namespace quorate::imagestore
