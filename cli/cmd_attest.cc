// `quorate attest`: sign a build result as a DSSE envelope (or Sigstore bundle); `quorate attest verify`: check one.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/pkcs11.h"
#include "quorate/attest/roster.h"
#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/time.h"

namespace quorate::cli {
namespace {

struct AttestArgs {
  std::string key, passphrase_file, node_id, builder_id, result, out;
  bool bundle = false;
  // verify
  std::string input, pub, roster, at;
  bool json = false;
};

Status run_attest(const AttestArgs& a) {
  if (a.key.empty()) return Status::usage("--key is required");
  if (a.result.empty()) return Status::usage("RESULT.json is required");
  if (a.out.empty()) return Status::usage("-o ATT.json is required");
  if (attest::is_pkcs11_uri(a.key) && a.node_id.empty())
    return Status::usage("--node-id is required with a pkcs11: key");
  auto passphrase = QR_TRY(read_passphrase_file(a.passphrase_file));
  auto signer = QR_TRY(attest::open_signer(a.key, passphrase));
  auto result = QR_TRY(read_file(a.result, 16u << 20));
  std::string node_id = a.node_id.empty() ? node_id_from_key_path(a.key) : a.node_id;
  auto bytes = attest::attest_build_result(result, *signer, node_id,
                                           a.bundle ? attest::AttestFormat::kBundle : attest::AttestFormat::kEnvelope,
                                           a.builder_id);
  if (!bytes.ok()) return bytes.status().with_context(a.result);
  QR_RETURN_IF_ERROR(write_file_atomic(a.out, *bytes + "\n", 0644));
  std::cout << "wrote " << a.out << " (" << (a.bundle ? "Sigstore bundle v0.3" : "DSSE envelope") << ", node "
            << node_id << ", keyid " << signer->keyid() << ")\n";
  return Status::ok_status();
}

nlohmann::json verdict_json(const attest::Verdict& v) {
  nlohmann::json j = {{"verified", v.ok()}, {"failure", attest::failure_name(v.failure)}};
  if (!v.ok()) {
    j["error"] = v.status.message();
    return j;
  }
  const auto& s = v.attestation->statement;
  j["subject"] = {{"name", s.subject_name}, {"digest", s.image_digest}};
  j["source"] = {{"uri", s.source_uri}, {"commit", s.commit}, {"recipe_path", s.recipe_path}};
  if (!s.build_args.empty()) j["source"]["build_args"] = s.build_args;
  j["run_environment"] = s.run_environment;
  j["config_digest"] = s.config_digest;
  j["diff_ids"] = s.diff_ids;
  j["signer"] = {{"node_id", v.attestation->node_id}, {"keyid", v.attestation->keyid}};
  j["builder"] = {{"id", s.builder_id}, {"uri", s.builder_uri}, {"version", s.builder_version}};
  j["started_on"] = format_rfc3339(s.started_on);
  j["finished_on"] = format_rfc3339(s.finished_on);
  return j;
}

// A verified signature vouches for who said it, not that it is harmless to a terminal: each line masked.
void print_verdict(const attest::Verdict& v) {
  const auto& s = v.attestation->statement;
  const auto line = [](const std::string& text) { std::cout << mask_control(text) << "\n"; };
  line("verified:  OK");
  line("subject:   " + s.subject_name + " " + s.image_digest);
  line("source:    " + s.source_uri);
  line("commit:    " + s.commit);
  line("recipe:    " + s.recipe_path);
  for (const auto& [name, value] : s.build_args) line("build arg: " + name + "=" + value);
  line("runs in:   " + s.run_environment);
  line("config:    " + s.config_digest);
  for (const auto& d : s.diff_ids) line("diff_id:   " + d);
  line("signer:    " + v.attestation->node_id + " (keyid " + v.attestation->keyid + ")");
  line("finished:  " + format_rfc3339(s.finished_on));
}

Status run_verify(const AttestArgs& a) {
  if (a.pub.empty() == a.roster.empty()) return Status::usage("give exactly one of --pub and --roster");
  auto bytes = QR_TRY(read_file(a.input, attest::kMaxEnvelopeBytes + 1));
  attest::Verdict v;
  if (!a.pub.empty()) {
    if (!a.at.empty()) return Status::usage("--at applies to --roster only");
    auto key = QR_TRY(attest::PublicKey::load(a.pub));
    v = attest::verify_with_key(bytes, key);
  } else {
    auto roster = QR_TRY(attest::Roster::load(a.roster));
    std::optional<int64_t> at;
    if (!a.at.empty()) at = QR_TRY(parse_rfc3339(a.at));
    v = roster.verify(bytes, at);
  }
  if (a.json) {
    std::cout << display_json(verdict_json(v), -1) << "\n";
  } else if (v.ok()) {
    print_verdict(v);
  }
  if (!v.ok()) return v.status.with_context(a.input);
  return Status::ok_status();
}

}  // namespace

std::string node_id_from_key_path(const std::string& key_path) {
  std::string name = std::filesystem::path(key_path).filename().string();
  for (std::string_view ext : {".pem", ".key"}) {
    if (name.size() > ext.size() && name.ends_with(ext)) name.resize(name.size() - ext.size());
  }
  return name;
}

void add_attest_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<AttestArgs>();
  auto* cmd = app.add_subcommand("attest", "Sign a build result (quorate build --result-out) as a DSSE attestation");
  cmd->add_option("--key", args->key, "Private key (PKCS#8 PEM, mode 0600) or pkcs11: URI");
  cmd->add_option("--passphrase-file", args->passphrase_file, "File whose first line decrypts the private key");
  cmd->add_option("--node-id", args->node_id,
                  "Node id the roster lists this key under (default: the key file's name without .key.pem)");
  cmd->add_option("--builder-id", args->builder_id,
                  "runDetails.builder.id, a URI (default: https://quorate.dev/node/<node id>)");
  cmd->add_option("-o,--out", args->out, "Where to write the attestation");
  cmd->add_flag("--bundle", args->bundle, "Write a Sigstore bundle v0.3 instead of a bare DSSE envelope");
  cmd->add_option("RESULT", args->result, "The build result JSON");

  auto* verify = cmd->add_subcommand(
      "verify", "Check an attestation (DSSE envelope or Sigstore bundle); exit 1 when it does not verify");
  verify->add_option("ATTESTATION", args->input, "DSSE envelope or Sigstore bundle (JSON)")->required();
  verify->add_option("--pub", args->pub, "Verify with this public key (PEM)");
  verify->add_option("--roster", args->roster, "Verify against the [[nodes]] of this roster (TOML)");
  verify->add_option("--at", args->at, "With --roster: judge key validity at this RFC 3339 time (default: finishedOn)");
  verify->add_flag("--json", args->json, "Print the verdict as JSON");
  verify->callback([args, &action] { action = [args] { return run_verify(*args); }; });

  cmd->callback([args, cmd, verify, &action] {
    if (cmd->got_subcommand(verify)) return;
    action = [args] { return run_attest(*args); };
  });
}

}  // namespace quorate::cli
