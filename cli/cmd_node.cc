// `quorate node --config node.toml`: run a rebuild node until SIGTERM/SIGINT.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include "quorate/cli/cli.h"
#include "quorate/node/builder_rebuilder.h"
#include "quorate/node/daemon.h"
#include "quorate/wire/security.h"

namespace quorate::cli {
namespace {

struct NodeArgs {
  std::string config;
  std::string new_curve_key;
  bool insecure = false;
  bool debug = false;
};

Status write_new_curve_key(const std::string& prefix) {
  auto keys = wire::generate_curve_keypair();
  if (!keys.ok()) return keys.status();
  QR_RETURN_IF_ERROR(wire::write_curve_keypair(*keys, prefix));
  std::cout << keys->public_z85 << "\n";
  std::cerr << "wrote " << prefix << ".curve.key (secret, 0600) and " << prefix << ".curve.pub\n";
  return Status();
}

Status run_node(const NodeArgs& a) {
  if (!a.new_curve_key.empty()) return write_new_curve_key(a.new_curve_key);
  if (a.config.empty()) return Status::usage("--config is required");
  auto config = node::load_node_config(a.config);
  if (!config.ok()) return config.status();
  if (a.insecure) config->transport.insecure = true;
  wire::EventLog log(std::cerr, wall_clock_ms, "node",
                     a.debug ? wire::EventLog::Level::kDebug : wire::EventLog::Level::kInfo);
  auto rebuilder = node::make_builder_rebuilder(*config, wall_clock_ms, [](const std::string& name) {
    const char* v = std::getenv(name.c_str());
    return std::string(v ? v : "");
  });
  if (!rebuilder.ok()) return rebuilder.status();
  const auto& stop = stop_on_termination_signals();
  auto daemon = node::NodeDaemon::open(std::move(*config), std::move(*rebuilder), log, {.clock_ms = wall_clock_ms});
  if (!daemon.ok()) return daemon.status();
  return (*daemon)->run(stop);
}

}  // namespace

void add_node_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<NodeArgs>();
  auto* cmd =
      app.add_subcommand("node", "Run a rebuild node: take build requests, rebuild, sign, publish attestations");
  cmd->add_option("--config", args->config, "node.toml (see docs/node.md)");
  cmd->add_option("--new-curve-key", args->new_curve_key,
                  "Write a CURVE key pair to PREFIX.curve.key and PREFIX.curve.pub, print the public key, exit");
  cmd->add_flag("--insecure", args->insecure, "Plain TCP without CURVE (loopback only unless allowed in the config)");
  cmd->add_flag("--debug", args->debug, "Log debug events too");
  cmd->callback([args, &action] { action = [args] { return run_node(*args); }; });
}

}  // namespace quorate::cli
