// `quorate diff A B`: why two images differ, down to the file and field; exit 0 identical, 1 different.
#include <CLI/CLI.hpp>

#include <iostream>
#include <sstream>

#include "quorate/audit/diff.h"
#include "quorate/cli/cli.h"

namespace quorate::cli {
namespace {

struct DiffArgs {
  std::string a, b;
  std::string ignore;
  bool json = false;
};

Status run_diff(const DiffArgs& args) {
  audit::DiffOptions options;
  std::istringstream names(args.ignore);
  for (std::string name; std::getline(names, name, ',');) {
    if (!name.empty()) options.ignore.insert(name);
  }
  auto diff = QR_TRY(audit::diff_images(args.a, args.b, options));
  if (args.json) {
    std::cout << audit::to_json(diff).dump(2) << "\n";
  } else {
    std::cout << audit::to_text(diff);
  }
  if (diff.identical()) return Status();
  return Status::verification("the images differ");
}

}  // namespace

void add_diff_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<DiffArgs>();
  auto* cmd = app.add_subcommand("diff",
                                 "Compare two images (OCI layout directories): manifest and config fields, then "
                                 "each differing layer file by file. Exit 0 identical, 1 different, 2 bad input.");
  cmd->add_option("IMAGE_A", args->a, "first image (OCI layout directory)")->required();
  cmd->add_option("IMAGE_B", args->b, "second image (OCI layout directory)")->required();
  cmd->add_option("--ignore", args->ignore,
                  "comma-separated fields to hide: mtime, owner, mode, xattrs, content, link, created");
  cmd->add_flag("--json", args->json, "print the differences as JSON");
  cmd->callback([&action, args] { action = [args] { return run_diff(*args); }; });
}

}  // namespace quorate::cli
