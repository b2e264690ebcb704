// `quorate gate`: the Kubernetes admission webhook; serves until SIGTERM/SIGINT (exit 0), re-reads its
// certificate and key on SIGHUP.
#include <signal.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <mutex>

#include "quorate/cli/cli.h"
#include "quorate/gate/decider.h"
#include "quorate/gate/server.h"
#include "quorate/wire/security.h"

namespace quorate::cli {
namespace {

struct GateArgs {
  std::string listen = "0.0.0.0:8443";
  std::string cert, key, policy, store, config;
  std::string quorum, quorum_key, curve_secret_key;
  int quorum_timeout_ms = gate::kDefaultQuorumTimeoutMs;
};

Status run_gate(const GateArgs& a) {
  auto colon = a.listen.rfind(':');
  if (colon == std::string::npos) return Status::usage("--listen wants HOST:PORT");
  gate::ServerOptions so;
  so.host = a.listen.substr(0, colon);
  try {
    size_t used = 0;
    so.port = std::stoi(a.listen.substr(colon + 1), &used);
    if (used != a.listen.size() - colon - 1 || so.port < 0 || so.port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return Status::usage("--listen " + a.listen + ": the port is not a number in 0..65535");
  }
  so.cert = a.cert;
  so.key = a.key;
  so.steady_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  static std::mutex log_mu;
  so.log = [](std::string_view line) {
    std::lock_guard lock(log_mu);
    std::cerr << line << "\n" << std::flush;
  };

  gate::DeciderOptions d;
  d.policy = a.policy;
  d.store = a.store;
  if (a.store.empty() == a.quorum.empty()) {
    return Status::usage("give exactly one of --store STORE.db and --quorum ENDPOINT");
  }
  if (a.quorum.empty() && (!a.quorum_key.empty() || !a.curve_secret_key.empty())) {
    return Status::usage("--quorum-key and --curve-secret-key go with --quorum");
  }
  if (!a.quorum.empty()) {
    if (a.quorum_key.empty()) return Status::usage("--quorum needs --quorum-key (the verifier's CURVE public key)");
    if (a.curve_secret_key.empty()) return Status::usage("--quorum needs --curve-secret-key (this gate's CURVE key)");
    if (a.quorum_timeout_ms <= 0 || a.quorum_timeout_ms > 60000) {
      return Status::usage("--quorum-timeout-ms must be in 1..60000");
    }
    wire::TransportConfig t;
    t.curve_secret_key = a.curve_secret_key;
    t.base_dir = std::filesystem::current_path();
    gate::QuorumSource q;
    q.endpoint = a.quorum;
    q.security = QR_TRY(wire::make_client_security(t, a.quorum_key));
    q.timeout_ms = a.quorum_timeout_ms;
    d.quorum = std::move(q);
  }
  if (!a.config.empty()) d.config = QR_TRY(gate::load_gate_config(a.config));
  d.clock_s = [] { return wall_clock_ms() / 1000; };
  auto decider = QR_TRY(gate::Decider::open(std::move(d)));

  // The signals are taken by sigwait in this thread; every thread the server starts inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto server = QR_TRY(gate::Server::start(*decider, std::move(so)));
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      (void)server->reload_certificates();  // logged; the previous pair stays in use on failure
      continue;
    }
    break;
  }
  server->stop();
  return Status();
}

}  // namespace

void add_gate_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<GateArgs>();
  auto* cmd =
      app.add_subcommand("gate", "Kubernetes admission webhook: admit only images the quorum accepted (docs/gate.md)");
  cmd->add_option("--listen", args->listen, "HOST:PORT to serve HTTPS on (default 0.0.0.0:8443; port 0: any free)");
  cmd->add_option("--tls-cert", args->cert, "PEM certificate (then intermediates); re-read on SIGHUP")->required();
  cmd->add_option("--tls-key", args->key, "PEM private key (mode 0600); re-read on SIGHUP")->required();
  cmd->add_option("--policy", args->policy, "Quorum policy file (docs/policy.md)")->required();
  cmd->add_option("--store", args->store, "The verifier daemon's store.db, read-only (or --quorum)");
  cmd->add_option("--quorum", args->quorum,
                  "Ask the verifier daemon instead of reading its store: its query endpoint (tcp://HOST:PORT)");
  cmd->add_option("--quorum-key", args->quorum_key, "With --quorum: the verifier's CURVE public key (Z85 or file)");
  cmd->add_option(
      "--curve-secret-key", args->curve_secret_key,
      "With --quorum: this gate's CURVE secret key file (its public key in the verifier's allowed_clients)");
  cmd->add_option("--quorum-timeout-ms", args->quorum_timeout_ms,
                  "With --quorum: how long one review waits for the verifier before denying (default 2000)");
  cmd->add_option("--config", args->config, "gate.toml: per-namespace rules (docs/gate.md)");
  cmd->callback([args, &action] { action = [args] { return run_gate(*args); }; });
}

}  // namespace quorate::cli
