// `quorate submit`: ask rebuild nodes to rebuild a commit; with --wait, print the verifier's decision and
// exit 0 (accepted) or 1 (rejected), as `quorate verify` does.
#include <google/protobuf/util/json_util.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/json.h"
#include "quorate/wire/request.h"
#include "quorate/wire/submit.h"

namespace quorate::cli {
namespace {

namespace pb = wire::pb;

struct SubmitArgs {
  std::vector<std::string> nodes;
  std::vector<std::string> node_keys;
  std::string repo, commit, recipe, image_name, image_tag, request_id;
  std::optional<int64_t> source_date_epoch;
  std::vector<std::string> build_args;  // NAME=VALUE
  bool wait = false;
  std::string quorum, quorum_key;
  double timeout_s = 600;
  bool json = false;
  bool insecure = false, allow_insecure_remote = false;
  std::string curve_secret_key;
};

nlohmann::json to_json(const google::protobuf::Message& m) {
  std::string text;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &text, o);
  return nlohmann::json::parse(text, nullptr, false);
}

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "-" : out;
}

// Every field is what a verifier sent (and names what nodes and the request said): each line masked.
void print_decision(const pb::Decision& d) {
  const auto line = [](const std::string& text) { std::cout << mask_control(text) << "\n"; };
  line("decision:   " + (d.accepted() ? "ACCEPTED " + d.digest() : std::string("REJECTED")));
  line("subject:    " + d.subject().repo() + " @ " + d.subject().commit() + " (" + d.subject().recipe_path() +
       ", SOURCE_DATE_EPOCH " + std::to_string(d.subject().source_date_epoch()) + ")");
  line("agreeing:   " + join(d.agreeing()));
  line("dissenting: " + std::string(d.dissenters().empty() ? "-" : ""));
  for (const auto& x : d.dissenters()) line("  " + x.node_id() + " attested " + x.digest());
  line("void:       " + join(d.void_nodes()));
  line("missing:    " + join(d.missing()));
  line("reason:     " + d.reason());
}

Status run_submit(const SubmitArgs& a) {
  if (!a.node_keys.empty() && a.node_keys.size() != a.nodes.size()) {
    return Status::usage("--node-key must be given once per --node, in the same order");
  }
  wire::SubmitOptions o;
  for (size_t i = 0; i < a.nodes.size(); ++i)
    o.nodes.push_back({a.nodes[i], a.node_keys.empty() ? "" : a.node_keys[i]});
  // Same inputs, same id (derived from the normalized request): a resubmission is answered with the existing
  // job instead of a second build.
  auto epoch = QR_TRY(source_date_epoch_of(a.source_date_epoch, nullptr));
  auto build_args = QR_TRY(parse_build_args(a.build_args));
  auto request = wire::normalize_request(
      {a.request_id, a.repo, a.commit, a.recipe, a.image_name, epoch, std::move(build_args), a.image_tag});
  if (!request.ok()) return Status::usage(request.status().message());
  o.request = wire::to_wire(*request);
  o.transport.insecure = a.insecure;
  o.transport.allow_insecure_remote = a.allow_insecure_remote;
  o.transport.curve_secret_key = a.curve_secret_key;
  o.transport.base_dir = std::filesystem::current_path();
  o.timeout_ms = static_cast<int>(a.timeout_s * 1000);
  o.wait = a.wait;
  o.quorum = {a.quorum, a.quorum_key};
  if (!a.json) {
    o.on_status = [](const pb::JobStatus& js) {
      // What a node sent: masked.
      std::cerr << mask_control("node " + js.node_id() + ": " + pb::JobStatus::State_Name(js.state()) +
                                (js.sequence() ? " seq " + std::to_string(js.sequence()) : "") +
                                (js.image_digest().empty() ? "" : " " + js.image_digest()) +
                                (js.message().empty() ? "" : " (" + js.message() + ")"))
                << "\n";
    };
  }
  auto report = wire::submit_build(o);
  if (!report.ok()) return report.status();

  if (a.json) {
    nlohmann::json j = {{"request_id", o.request.request_id()},
                        {"jobs", nlohmann::json::array()},
                        {"timed_out", report->timed_out},
                        {"uncounted", report->uncounted}};
    for (const auto& js : report->jobs) j["jobs"].push_back(to_json(js));
    j["decision"] = report->decision ? to_json(*report->decision) : nlohmann::json();
    // The engine's own record, as `quorate verify --json` prints it.
    j["decision_record"] =
        report->decision ? parse_untrusted_json(report->decision->decision_json()) : nlohmann::json();
    std::cout << display_json(j, -1) << "\n";
  } else if (report->decision) {
    print_decision(*report->decision);
  }
  size_t refused = 0;
  for (const auto& js : report->jobs) refused += js.state() == pb::JobStatus::REJECTED ? 1 : 0;
  if (!a.wait) {
    if (refused)
      return Status::io(std::to_string(refused) + " of " + std::to_string(report->jobs.size()) +
                        " nodes did not take the request");
    if (!a.json) std::cout << "submitted " << o.request.request_id() << " to " << report->jobs.size() << " node(s)\n";
    return Status();
  }
  if (!report->decision) {
    return Status::io(report->timed_out ? "timed out before the verifier decided"
                                        : "no node succeeded; nothing to decide");
  }
  if (!report->uncounted.empty() && !a.json) {
    std::string names;
    for (const auto& n : report->uncounted) names += " " + n;
    std::cerr << "warning: the decision does not count the votes of:" << mask_control(names) << "\n";
  }
  if (!report->decision->accepted()) return Status::verification("quorum rejected: " + report->decision->reason());
  return Status();
}

}  // namespace

void add_submit_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<SubmitArgs>();
  auto* cmd =
      app.add_subcommand("submit", "Ask rebuild nodes to rebuild a commit; optionally wait for the quorum decision");
  cmd->add_option("--node", args->nodes, "A node's control endpoint (tcp://HOST:PORT); repeat for several")->required();
  cmd->add_option("--node-key", args->node_keys, "CURVE public key (Z85 or file) of each --node, in order");
  cmd->add_option("--repo", args->repo, "Repository (path or URL the nodes can reach)")->required();
  cmd->add_option("--commit", args->commit, "Commit to rebuild")->required();
  cmd->add_option("--recipe", args->recipe, "Recipe path in the commit (default: quorate.toml)");
  cmd->add_option("--image-name,--name", args->image_name, "Override the recipe's image name");
  cmd->add_option("--tag", args->image_tag, "The image's tag (a Containerfile's; part of the request)");
  cmd->add_option("--source-date-epoch", args->source_date_epoch, "Override SOURCE_DATE_EPOCH (default: commit time)");
  cmd->add_option("--build-arg", args->build_args,
                  "NAME=VALUE for a Containerfile ARG (repeatable; part of the request and of the attestation)");
  cmd->add_option("--request-id", args->request_id, "Request id (default: derived from the inputs)");
  cmd->add_flag("--wait", args->wait, "Wait for the builds and the verifier's decision; exit 0 accepted, 1 rejected");
  cmd->add_option("--quorum", args->quorum, "The verifier's query endpoint (with --wait)");
  cmd->add_option("--quorum-key", args->quorum_key, "The verifier's CURVE public key (Z85 or file)");
  cmd->add_option("--timeout", args->timeout_s, "Give up after this many seconds (default 600)");
  cmd->add_flag("--json", args->json, "Print the job statuses and the decision as JSON");
  cmd->add_flag("--insecure", args->insecure, "Plain TCP without CURVE (loopback only unless --allow-insecure-remote)");
  cmd->add_flag("--allow-insecure-remote", args->allow_insecure_remote,
                "With --insecure, allow non-loopback endpoints");
  cmd->add_option("--curve-secret-key", args->curve_secret_key, "This client's CURVE secret key file");
  cmd->callback([args, &action] { action = [args] { return run_submit(*args); }; });
}

}  // namespace quorate::cli
