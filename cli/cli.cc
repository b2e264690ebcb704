// Subcommand table and the single place where Status becomes an exit code.
#include "quorate/cli/cli.h"

#include <CLI/CLI.hpp>

#include <iostream>

namespace quorate::cli {

int exit_code(const Status& status) {
  if (status.ok()) return 0;
  if (status.code() == Code::kVerification) return 1;
  return 2;
}

int run(int argc, char** argv) {
  CLI::App app{"quorate: rebuild container images independently, attest their digests, accept on k-of-n quorum."};
  app.set_version_flag("--version", std::string("quorate ") + QUORATE_VERSION);
  app.require_subcommand(1);
  app.failure_message(CLI::FailureMessage::help);

  Action action;
  add_normalize_command(app, action);
  add_submit_command(app, action);
  add_node_command(app, action);
  add_quorum_command(app, action);
  add_verify_command(app, action);
  add_store_command(app, action);
  add_key_command(app, action);
  add_roster_command(app, action);
  add_attest_command(app, action);
  add_build_command(app, action);
  add_image_command(app, action);
  add_diff_command(app, action);
  add_audit_command(app, action);
  add_gate_command(app, action);

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
    std::cerr << "quorate: " << status.to_string() << "\n";
  }
  return exit_code(status);
}

}  // namespace quorate::cli
