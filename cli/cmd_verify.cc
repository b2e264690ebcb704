// `quorate verify`: decide, under a quorum policy, whether k of n trusted nodes agree; exit 0 accepted,
// 1 rejected, 2 bad input.
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <thread>

#include "interrupt.h"
#include "quorate/cli/cli.h"
#include "quorate/core/build_args.h"
#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/time.h"
#include "quorate/imagestore/resolve.h"
#include "quorate/quorum/query.h"
#include "quorate/quorum/verifier.h"

namespace quorate::cli {
namespace {

struct VerifyArgs {
  std::string policy;
  std::string store;
  std::vector<std::string> files;
  std::string image, commit, repo;
  std::string now;
  std::vector<std::string> build_args;  // NAME=VALUE
  bool json = false;
  bool insecure_registry = false;
  int timeout_seconds = 1800;
};

// The command line is the one place that reads the clock; the library takes `now` as a value.
Result<int64_t> decision_time(const std::string& now) {
  if (!now.empty()) return parse_rfc3339(now);
  return static_cast<int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

// Attestation files are verified here and only the verified ones vote; refusals are reported on stderr.
// `refusals` gets one "FILE: reason" per refused file, for the verdict line.
Result<std::vector<quorum::Vote>> votes_from_files(const quorum::Verifier& verifier,
                                                   const std::vector<std::string>& files,
                                                   std::vector<std::string>& refusals) {
  std::vector<quorum::Vote> votes;
  for (const auto& f : files) {
    std::string bytes = QR_TRY(read_file(f));
    auto v = verifier.verify(bytes);
    if (!v.ok()) {
      if (!v.status().is_verification() && !v.status().is_bad_input()) return v.status();
      std::cerr << f << ": refused: " << mask_control(v.status().to_string()) << "\n";
      refusals.push_back(f + ": " + v.status().message());
      continue;
    }
    votes.push_back(v->vote);
  }
  return votes;
}

// Rows of the store that did not count, because their envelope does not verify here or their columns lie.
void report_distrusted(const std::string& store, const std::vector<quorum::DistrustedRow>& rows) {
  for (const auto& r : rows) {
    std::cerr << store << ": attestation row " << r.id << " (" << mask_control(r.envelope_digest)
              << ") ignored: " << mask_control(r.reason) << "\n";
  }
}

Status run_verify(const VerifyArgs& a) {
  clean_up_on_interrupt();  // on Ctrl-C: skopeo (--image) stopped, its copy removed
  if (a.store.empty() && a.files.empty()) {
    return Status::usage("nothing to decide from: give --store DB (an attestation store) or attestation files");
  }
  if (!a.store.empty() && !a.files.empty()) {
    return Status::usage("give either --store DB or attestation files, not both");
  }
  if (!a.repo.empty() && a.commit.empty()) return Status::usage("--repo needs --commit");
  int64_t now = QR_TRY(decision_time(a.now));
  quorum::Verifier verifier = QR_TRY(quorum::Verifier::load(a.policy));
  quorum::Question q{a.image, a.commit, a.repo};
  // The question names one set of build args, none when no --build-arg is given: votes built with other args
  // belong to other subject keys and never count for these. An image asked about alone is asked about under
  // any build args, as the admission gate does: the digest names the image, and each subject key is still
  // decided on its own votes.
  const auto build_args = QR_TRY(parse_build_args(a.build_args));
  if (!build_args.empty() || a.image.empty() || !a.commit.empty()) q.build_args = QR_TRY(build_args_text(build_args));
  std::string reencoded_hint;
  if (imagestore::is_transport_reference(a.image)) {
    // A published copy: read with skopeo, every blob checked, down to the digests attestations name.
    imagestore::ResolveOptions ro;
    ro.reference = a.image;
    ro.skopeo = program_on_path("skopeo");
    ro.insecure_registry = a.insecure_registry;
    ro.temp_dir = temp_dir_from_env();
    ro.timeout = std::chrono::seconds(a.timeout_seconds);
    auto resolved = QR_TRY(imagestore::resolve_image(ro));
    std::cerr << a.image << ": manifest " << resolved.manifest_digest << " ("
              << (resolved.manifest_media_type.empty() ? "no mediaType" : mask_control(resolved.manifest_media_type))
              << "), content " << resolved.config_digest << ", " << resolved.diff_ids.size()
              << " layer(s) checked against their diff_ids\n";
    q.image_digest.clear();
    // Under match = "content" any honest re-encoding of the attested content is the accepted image; under
    // "image", only the attested manifest bytes are (docs/decisions.md).
    if (verifier.policy().rules().match == quorum::MatchMode::kContent) {
      q.content_digest = resolved.config_digest;
    } else {
      q.image_digest = resolved.manifest_digest;
      reencoded_hint =
          "; the policy's match = \"image\" accepts only the attested manifest digest: a re-encoded copy "
          "(Docker media types, another compression; content " +
          resolved.config_digest + ") needs match = \"content\"";
    }
  }
  quorum::Answer answer;
  std::vector<std::string> refusals;
  if (!a.store.empty()) {
    if (!std::filesystem::exists(a.store)) return Status::not_found(a.store + ": no such store");
    auto store = QR_TRY(quorum::Store::open(a.store));
    quorum::VerifiedVotes votes(*store, verifier, {std::max(1u, std::thread::hardware_concurrency())});
    answer = QR_TRY(quorum::answer(verifier.policy(), votes, q, now));
    report_distrusted(a.store, votes.take_distrusted());
    Status recorded = store->transaction([&] {
      for (const auto& d : answer.decisions) QR_RETURN_IF_ERROR(store->add_decision(d));
      return Status();
    });
    QR_RETURN_IF_ERROR(recorded);
  } else {
    std::vector<quorum::Vote> votes = QR_TRY(votes_from_files(verifier, a.files, refusals));
    answer = QR_TRY(quorum::answer(verifier.policy(), votes, q, now));
  }
  for (const auto& d : answer.decisions) {
    if (!a.json) {
      std::cout << d.to_text();
      continue;
    }
    auto json = QR_TRY(d.to_json());
    // Node ids, subjects and reasons are what policies and statements said: DEL and C1 controls escaped
    // (core/json.h), the same JSON value, nothing a terminal obeys.
    std::cout << escape_display_controls(json) << "\n";
  }
  if (!a.json) std::cout << mask_control(answer.summary) << "\n";
  if (!answer.yes) {
    // "nothing attested" when every file was refused says too little: name why the first one was.
    std::string refused;
    if (!a.store.empty() && answer.decisions.empty()) {
      refused =
          "; the store holds no attestation for it (`quorate store import` says which attestations it "
          "refused and why, e.g. a key the policy lists under another node id)";
    }
    if (!refusals.empty()) {
      refused = "; " + std::to_string(refusals.size()) + " of " + std::to_string(a.files.size()) +
                " attestation(s) refused, first " + refusals.front();
    }
    return Status::verification(answer.summary + reencoded_hint + refused);
  }
  return Status();
}

}  // namespace

void add_verify_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<VerifyArgs>();
  auto* cmd = app.add_subcommand(
      "verify", "Decide whether k of n trusted nodes attest the same digest (exit 0 accepted, 1 rejected)");
  cmd->add_option("--policy", args->policy, "Quorum policy file (docs/policy.md)")->required();
  cmd->add_option("--store", args->store, "Attestation store (SQLite) to decide from; decisions are recorded in it");
  cmd->add_option("attestations", args->files, "DSSE envelope or Sigstore bundle files to decide from");
  cmd->add_option(
      "--image", args->image,
      "Is this image accepted, and for which commit? With --commit: for that commit? A digest (sha256:…) or a "
      "published copy read with skopeo: docker://HOST/REPO@sha256:…, oci:DIR, oci-archive:FILE, "
      "docker-archive:FILE (under match = \"content\" any re-encoding of the attested content is accepted)");
  cmd->add_flag("--insecure-registry", args->insecure_registry,
                "With --image docker://…: plain HTTP or unverified TLS (skopeo --src-tls-verify=false)");
  cmd->add_option("--timeout", args->timeout_seconds, "With --image TRANSPORT:…: seconds skopeo may take");
  cmd->add_option("--commit", args->commit, "What was accepted for this commit?");
  cmd->add_option("--repo", args->repo, "With --commit: only this source repository URI");
  cmd->add_option("--build-arg", args->build_args,
                  "NAME=VALUE, repeatable: the build args of the subject asked about (as given to quorate build / "
                  "submit); without it, only subjects built without build args are decided (except for --image alone: "
                  "any build args)")
      ->allow_extra_args(false);
  cmd->add_flag("--json", args->json, "Print each decision as canonical JSON, one a line");
  cmd->add_option("--now", args->now, "Decide as of this RFC 3339 time (default: now)");
  cmd->callback([args, &action] { action = [args] { return run_verify(*args); }; });
}

}  // namespace quorate::cli
