// `quorate diff A B`: why two images differ, down to the file and field; exit 0 identical, 1 different.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "interrupt.h"
#include "progress.h"
#include "quorate/audit/diff.h"
#include "quorate/cli/cli.h"
#include "quorate/core/json.h"

namespace quorate::cli {
namespace {

struct DiffArgs {
  std::string a, b;
  std::string ignore;
  std::string platform;
  bool json = false;
  bool deep = false;
  bool quiet = false;
};

Status run_diff(const DiffArgs& args) {
  clean_up_on_interrupt();  // on Ctrl-C: diffoscope stopped, the extracted images removed
  audit::DiffOptions options;
  options.temp_dir = temp_dir_from_env();
  options.platform = args.platform;
  std::istringstream names(args.ignore);
  for (std::string name; std::getline(names, name, ',');) {
    if (!name.empty()) options.ignore.insert(name);
  }
  if (args.deep) {
    // The CLI is the one place that reads PATH; the library is handed the program.
    const char* path = std::getenv("PATH");
    auto diffoscope = audit::find_diffoscope(path ? path : "");
    if (!diffoscope.ok()) return diffoscope.status().with_context("--deep");
    options.diffoscope = *diffoscope;
  }
  Progress progress("diff", args.quiet);
  options.progress = progress.lines();
  auto diff = QR_TRY(audit::diff_images(args.a, args.b, options));
  progress.done();
  if (args.json) {
    std::cout << display_json(audit::to_json(diff), -1) << "\n";
  } else {
    std::cout << audit::to_text(diff);
  }
  if (diff.identical()) return Status();
  return Status::verification("the images differ");
}

}  // namespace

void add_diff_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<DiffArgs>();
  auto* cmd = app.add_subcommand(
      "diff",
      "Compare two images as they are (nothing is normalized): manifest and config fields, then each differing "
      "layer file by file. Each image is an OCI layout directory, an OCI layout tar or a docker-archive "
      "(docker save), told apart by content; tars are extracted to a temporary directory under /tmp and "
      "removed. Exit 0 identical, 1 different, 2 bad usage or bad input. See docs/diff.md.");
  cmd->add_option("IMAGE_A", args->a, "first image (OCI layout directory, OCI layout tar or docker-archive)")
      ->required();
  cmd->add_option("IMAGE_B", args->b, "second image (OCI layout directory, OCI layout tar or docker-archive)")
      ->required();
  cmd->add_option("--ignore", args->ignore,
                  "comma-separated fields to hide: mtime, owner, mode, xattrs, content, link, created");
  cmd->add_option("--platform", args->platform,
                  "os/arch[/variant] of the image to compare when an OCI layout holds several (an index)");
  cmd->add_flag("--deep", args->deep,
                "run diffoscope on both versions of each changed regular file and show its report (first 200 "
                "lines, 60 s per file); a usage error when diffoscope is not installed");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress on stderr (shown only when stderr is a terminal)");
  cmd->add_flag("--json", args->json, "print the differences as JSON (with --deep, a \"deep\" string per file)");
  cmd->callback([&action, args] { action = [args] { return run_diff(*args); }; });
}

}  // namespace quorate::cli
