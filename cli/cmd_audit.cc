// `quorate audit`: per Git commit, who attested what; red flags first; exit 1 when there is any red flag.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <optional>

#include "interrupt.h"
#include "quorate/audit/audit.h"
#include "quorate/cli/cli.h"
#include "quorate/core/json.h"
#include "quorate/core/time.h"
#include "quorate/quorum/verifier.h"

namespace quorate::cli {
namespace {

struct AuditArgs {
  std::string repo, store, policy, range, source_uri, format = "text", now;
  size_t max_count = 100;
  bool json = false;
};

Status run_audit_command(const AuditArgs& a) {
  clean_up_on_interrupt();  // on Ctrl-C: gpg stopped, its signature files removed
  if (a.format != "text" && a.format != "markdown" && a.format != "json") {
    return Status::usage("--format must be text, markdown or json");
  }
  if (!std::filesystem::exists(a.store)) return Status::not_found(a.store + ": no such store");
  auto store = QR_TRY(quorum::Store::open(a.store));
  std::optional<quorum::Verifier> verifier;
  if (!a.policy.empty()) verifier.emplace(QR_TRY(quorum::Verifier::load(a.policy)));
  audit::AuditOptions o;
  o.repo = a.repo;
  o.range = a.range;
  o.max_count = a.max_count;
  o.source_uri = a.source_uri;
  o.verifier = verifier ? &*verifier : nullptr;
  o.gpg = program_on_path("gpg");
  o.temp_dir = temp_dir_from_env();
  // The command line is the one place that reads the clock.
  o.now = a.now.empty()
              ? std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count()
              : QR_TRY(parse_rfc3339(a.now));
  auto report = QR_TRY(audit::run_audit(*store, o));
  if (a.json || a.format == "json") {
    std::cout << display_json(audit::to_json(report), -1) << "\n";
  } else if (a.format == "markdown") {
    std::cout << audit::to_markdown(report);
  } else {
    std::cout << audit::to_text(report);
  }
  if (!report.red_flags.empty()) {
    return Status::verification(std::to_string(report.red_flags.size()) + " red flag(s)");
  }
  return Status();
}

}  // namespace

void add_audit_command(CLI::App& app, Action& action) {
  auto a = std::make_shared<AuditArgs>();
  auto* cmd = app.add_subcommand("audit",
                                 "For each commit of a range, list the attestations in a store: nodes, digests, "
                                 "agreement, decision; red flags (attestations naming missing commits or another "
                                 "source) first. Exit 1 when there is a red flag.");
  cmd->add_option("--repo", a->repo, "repository: local path or file:// URL")->required();
  cmd->add_option("--store", a->store, "attestation store (SQLite) to read")->required();
  cmd->add_option("--policy", a->policy, "quorum policy to decide each commit under");
  cmd->add_option("--source-uri", a->source_uri,
                  "the source URI attestations use for this repository (default: --repo)");
  cmd->add_option("--max-count", a->max_count, "commits to walk at most (default 100)");
  cmd->add_option("--format", a->format, "text (default), markdown or json");
  cmd->add_flag("--json", a->json, "same as --format json");
  cmd->add_option("--now", a->now, "decide as of this RFC 3339 time (default: now)");
  cmd->add_option("REV_RANGE", a->range, "REV (its first-parent history) or A..B; default HEAD");
  cmd->callback([&action, a] { action = [a] { return run_audit_command(*a); }; });
}

}  // namespace quorate::cli
