// `quorate image`: the image store builds take builder images from (import, pull, list, remove;
// docs/image-store.md).
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "interrupt.h"
#include "progress.h"
#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/json.h"
#include "quorate/imagestore/image_store.h"

namespace quorate::cli {

std::string default_image_store() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/quorate/images";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/quorate/images";
  return ".quorate-images";
}

namespace {

struct ImageArgs {
  std::string store = default_image_store();
  std::string source;
  std::string reference;
  std::vector<std::string> digests;
  bool json = false;
  bool insecure_registry = false;
  bool quiet = false;
  int64_t timeout_seconds = 1800;
};

// The ref name is an index's annotation, from whoever made the image: masked.
void print(const imagestore::StoredImage& i) {
  std::cout << i.digest << (i.ref_name.empty() ? "" : "  " + mask_control(i.ref_name)) << "\n";
}

// `image import SRC`: every image of an OCI layout, oci-archive or docker-archive stored byte for byte;
// prints each one's manifest digest (and its ref name, if any).
Status run_import(const ImageArgs& a) {
  clean_up_on_interrupt();  // no half-copied blob (`.HEX.tmp.*`) or extracted archive left by Ctrl-C
  auto store = QR_TRY(imagestore::ImageStore::open(a.store));
  auto images = QR_TRY(store.import(a.source));
  for (const auto& i : images) print(i);
  return Status::ok_status();
}

Status run_pull(const ImageArgs& a) {
  clean_up_on_interrupt();  // skopeo stopped and its download directory removed on Ctrl-C
  auto store = QR_TRY(imagestore::ImageStore::open(a.store));
  imagestore::PullOptions o;
  o.reference = a.reference;
  o.skopeo = program_on_path("skopeo");
  o.insecure_registry = a.insecure_registry;
  o.timeout = std::chrono::seconds(a.timeout_seconds);
  Progress progress("image pull", a.quiet);
  o.progress = progress.lines();
  auto image = QR_TRY(store.pull(o));
  print(image);
  return Status::ok_status();
}

Status run_ls(const ImageArgs& a) {
  auto store = QR_TRY(imagestore::ImageStore::open(a.store));
  auto images = QR_TRY(store.list());
  if (a.json) {  // one object per image per line, as every --json (docs/decisions.md); an empty store prints none
    for (const auto& i : images) {
      std::cout << display_json({{"digest", i.digest}, {"ref_name", i.ref_name}, {"size", i.size}}, -1) << "\n";
    }
    return Status::ok_status();
  }
  for (const auto& i : images) print(i);
  return Status::ok_status();
}

Status run_rm(const ImageArgs& a) {
  auto store = QR_TRY(imagestore::ImageStore::open(a.store));
  QR_RETURN_IF_ERROR(store.remove(a.digests));
  for (const auto& d : a.digests) std::cout << "removed " << d << "\n";
  return Status::ok_status();
}

void add_store_option(CLI::App* cmd, ImageArgs& args) {
  cmd->add_option("--image-store", args.store, "Image store directory")->capture_default_str();
}

}  // namespace

void add_image_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<ImageArgs>();
  auto* cmd = app.add_subcommand("image", "The image store builder images are taken from (docs/image-store.md)");
  cmd->require_subcommand(1);
  add_store_option(cmd, *args);
  auto* import_cmd = cmd->add_subcommand(
      "import",
      "Copy the images of an OCI layout directory, oci-archive or docker-archive into the store, byte for byte");
  import_cmd->add_option("SRC", args->source, "OCI layout directory, oci-archive or docker-archive (docker save)")
      ->required();
  add_store_option(import_cmd, *args);
  import_cmd->callback([args, &action] { action = [args] { return run_import(*args); }; });
  auto* pull =
      cmd->add_subcommand("pull", "Copy an image pinned by digest from its registry (with skopeo) into the store");
  pull->add_option("REF", args->reference, "NAME@sha256:HEX (a tag alone is refused)")->required();
  pull->add_flag(
      "--insecure-registry", args->insecure_registry,
      "Plain HTTP or unverified TLS to the registry (skopeo --src-tls-verify=false): loopback test registries");
  pull->add_option("--timeout", args->timeout_seconds, "Seconds skopeo may take; then it is killed")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{24} * 3600));
  pull->add_flag("-q,--quiet", args->quiet, "No progress on stderr (shown only when stderr is a terminal)");
  add_store_option(pull, *args);
  pull->callback([args, &action] { action = [args] { return run_pull(*args); }; });
  auto* ls = cmd->add_subcommand("ls", "List the images in the store by manifest digest");
  ls->add_flag("--json", args->json, "One JSON object per image per line: digest, ref_name, size");
  add_store_option(ls, *args);
  ls->callback([args, &action] { action = [args] { return run_ls(*args); }; });
  auto* rm =
      cmd->add_subcommand("rm", "Remove images, the blobs no other image uses, and their unpacked root file systems");
  rm->add_option("DIGEST", args->digests, "Manifest digests (sha256:HEX), as `quorate image ls` prints them")
      ->required();
  add_store_option(rm, *args);
  rm->callback([args, &action] { action = [args] { return run_rm(*args); }; });
}

}  // namespace quorate::cli
