// Subcommand table and the single place where Status becomes an exit code.
#include "quorate/cli/cli.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "quorate/core/display.h"

namespace quorate::cli {

int exit_code(const Status& status) {
  if (status.ok()) return 0;
  if (status.code() == Code::kVerification) return 1;
  return 2;
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The verdict line. Messages name paths, names and values from hostile inputs (tar members, tree entries,
// a build's log): each line masked, and lines after the first indented so that no line of the message can pass
// for a verdict line of its own.
void print_failure(const Status& status) {
  const std::string text = status.to_string();
  size_t start = 0;
  for (size_t end = text.find('\n');; end = text.find('\n', start)) {
    std::cerr << (start == 0 ? "quorate: " : "  ") << mask_control(text.substr(start, end - start)) << "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"quorate: rebuild container images independently, attest their digests, accept on k-of-n quorum."};
  app.set_version_flag("--version", std::string("quorate ") + QUORATE_VERSION);
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::help);
  // Where the docs the help texts name (docs/*.md) are once installed; `man quorate` has the first hour.
  app.footer(std::string("Every command has --help. The first hour, exit codes and environment: man quorate.\n"
                         "docs/*.md named in the help texts: ") +
             QUORATE_DOCDIR + "/docs (installed) or the source's docs/.\n");

  Action action;
  // In the order of the workflow (help lists them so): make a key, build and attest, decide and keep the
  // decisions; then the tools around images; then the network's daemons and clients.
  add_key_command(app, action);
  add_roster_command(app, action);
  add_build_command(app, action);
  add_attest_command(app, action);
  add_verify_command(app, action);
  add_store_command(app, action);
  add_image_command(app, action);
  add_normalize_command(app, action);
  add_diff_command(app, action);
  add_audit_command(app, action);
  add_node_command(app, action);
  add_submit_command(app, action);
  add_quorum_command(app, action);
  add_gate_command(app, action);

  // A mistyped command is named (CLI11 would only say that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    std::string given = argv[1];
    std::vector<std::string> names;
    for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), given) == names.end()) {
      std::cerr << "quorate: unknown command '" << given << "'";
      std::string best;
      size_t best_distance = 3;  // suggest only close names
      for (const auto& n : names) {
        size_t d = edit_distance(given, n);
        if (d < best_distance) best_distance = d, best = n;
      }
      if (!best.empty()) std::cerr << "; did you mean '" << best << "'?";
      std::cerr << "\ncommands:";
      for (const auto& n : names) std::cerr << " " << n;
      std::cerr << "\n(quorate --help describes them)\n";
      return 2;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (!action) return 2;
  Status status;
  try {
    status = action();
  } catch (const std::exception& e) {
    status = Status::internal(std::string("unexpected exception: ") + e.what());
  }
  if (!status.ok()) {
    std::cout.flush();  // the report first, then the verdict line, also when both go to one pipe
    print_failure(status);
  }
  return exit_code(status);
}

}  // namespace quorate::cli
