// `quorate roster check`: the keys of a roster (or of a policy and the roster it names), their validity windows
// now, and the warnings an operator acts on before a quorum loses a voter.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include "quorate/attest/roster.h"
#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/time.h"

namespace quorate::cli {
namespace {

struct RosterArgs {
  std::string path;
  std::string within = "30d";
  std::string now;
};

Status run_check(const RosterArgs& a) {
  int64_t within = QR_TRY(parse_duration(a.within));
  int64_t now = wall_clock_ms() / 1000;
  if (!a.now.empty()) now = QR_TRY(parse_rfc3339(a.now));
  auto entries = QR_TRY(attest::load_roster_or_policy(a.path));
  if (entries.empty()) return Status::bad_input(a.path + ": no [[nodes]] (and no roster file naming any)");
  auto check = attest::check_roster(entries, now, within);
  std::cout << "keys at " << format_rfc3339(now) << ":\n";
  // Node ids are the roster file's text, which may have come from elsewhere: masked.
  for (const auto& l : check.lines) std::cout << "  " << mask_control(l) << "\n";
  for (const auto& w : check.warnings) std::cout << "warning: " << mask_control(w) << "\n";
  if (!check.warnings.empty()) {
    return Status::verification(std::to_string(check.warnings.size()) + " warning(s) for " + a.path);
  }
  std::cout << "ok: every node has a valid key and none expires within " << a.within << "\n";
  return Status::ok_status();
}

}  // namespace

void add_roster_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<RosterArgs>();
  auto* roster = app.add_subcommand("roster", "Inspect the roster of trusted node keys");
  roster->require_subcommand(1);
  auto* check = roster->add_subcommand(
      "check",
      "List each node's keys and validity windows; warn (exit 1) of nodes with no valid key, keys expiring "
      "soon, keys listed under two node ids, and node ids that read alike (non-ASCII, or differing only in case)");
  check->add_option("ROSTER_OR_POLICY", args->path, "Roster file, or policy file ([[nodes]] and/or roster = FILE)")
      ->required();
  check->add_option("--within", args->within, "Warn of keys that stop being valid within this duration (default 30d)");
  check->add_option("--now", args->now, "Judge at this RFC 3339 time instead of the clock");
  check->callback([args, &action] { action = [args] { return run_check(*args); }; });
}

}  // namespace quorate::cli
