// `quorate image`: the image store builds take builder images from (import an OCI layout, list what is there).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include <nlohmann/json.hpp>

#include "quorate/cli/cli.h"
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
  bool json = false;
};

Status run_import(const ImageArgs& a) {
  auto store = QR_TRY(imagestore::ImageStore::open(a.store));
  auto images = QR_TRY(store.import_layout(a.source));
  for (const auto& i : images) std::cout << i.digest << (i.ref_name.empty() ? "" : "  " + i.ref_name) << "\n";
  return Status::ok_status();
}

Status run_ls(const ImageArgs& a) {
  auto store = QR_TRY(imagestore::ImageStore::open(a.store));
  auto images = QR_TRY(store.list());
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& i : images) out.push_back({{"digest", i.digest}, {"ref_name", i.ref_name}, {"size", i.size}});
    std::cout << out.dump() << "\n";
    return Status::ok_status();
  }
  for (const auto& i : images) std::cout << i.digest << (i.ref_name.empty() ? "" : "  " + i.ref_name) << "\n";
  return Status::ok_status();
}

}  // namespace

void add_image_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<ImageArgs>();
  auto* cmd = app.add_subcommand("image", "The image store builder images are taken from (docs/image-store.md)");
  cmd->require_subcommand(1);
  cmd->add_option("--image-store", args->store, "Image store directory")->capture_default_str();
  auto* import = cmd->add_subcommand("import", "Copy the images of an OCI layout directory into the store, byte for byte");
  import->add_option("SRC", args->source, "OCI layout directory")->required();
  import->add_option("--image-store", args->store, "Image store directory")->capture_default_str();
  import->callback([args, &action] { action = [args] { return run_import(*args); }; });
  auto* ls = cmd->add_subcommand("ls", "List the images in the store by manifest digest");
  ls->add_flag("--json", args->json, "JSON output");
  ls->add_option("--image-store", args->store, "Image store directory")->capture_default_str();
  ls->callback([args, &action] { action = [args] { return run_ls(*args); }; });
}

}  // namespace quorate::cli
