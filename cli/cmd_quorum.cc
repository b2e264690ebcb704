// `quorate quorum --config quorum.toml`: run the verifier daemon until SIGTERM/SIGINT.
#include <CLI/CLI.hpp>

#include <iostream>

#include "quorate/cli/cli.h"
#include "quorate/quorumd/quorum_judge.h"
#include "quorate/quorumd/verifier_daemon.h"

namespace quorate::cli {
namespace {

struct QuorumArgs {
  std::string config;
  bool insecure = false;
  bool debug = false;
};

Status run_quorum(const QuorumArgs& a) {
  auto config = quorum::load_verifier_config(a.config);
  if (!config.ok()) return config.status();
  if (a.insecure) config->transport.insecure = true;
  wire::EventLog log(std::cerr, wall_clock_ms, "quorum",
                     a.debug ? wire::EventLog::Level::kDebug : wire::EventLog::Level::kInfo);
  auto judge = quorum::open_quorum_judge(*config, wall_clock_ms);
  if (!judge.ok()) return judge.status();
  const auto& stop = stop_on_termination_signals();
  auto daemon = quorum::VerifierDaemon::open(std::move(*config), std::move(*judge), log, {.clock_ms = wall_clock_ms});
  if (!daemon.ok()) return daemon.status();
  return (*daemon)->run(stop);
}

}  // namespace

void add_quorum_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<QuorumArgs>();
  auto* cmd = app.add_subcommand(
      "quorum", "Run the verifier: follow the roster's nodes, decide, publish decisions, answer queries");
  cmd->add_option("--config", args->config, "quorum.toml (see docs/node.md)")->required();
  cmd->add_flag("--insecure", args->insecure, "Plain TCP without CURVE (loopback only unless allowed in the config)");
  cmd->add_flag("--debug", args->debug, "Log debug events too");
  cmd->callback([args, &action] { action = [args] { return run_quorum(*args); }; });
}

}  // namespace quorate::cli
