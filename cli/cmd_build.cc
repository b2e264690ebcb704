// `quorate build`: rebuild an OCI image from a Git commit and its recipe; print the image and content digests.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

#include "interrupt.h"
#include "progress.h"
#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/pkcs11.h"
#include "quorate/builder/build.h"
#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/file.h"

namespace quorate::cli {
namespace {

struct BuildArgs {
  std::string repo, commit, recipe, out, format = "oci", result_out, work_dir, base_layout;
  std::string image_store = default_image_store();
  std::string image_name, image_tag, attest_key, node_id, builder_id, attest_out, passphrase_file;
  std::optional<int64_t> source_date_epoch;
  std::vector<std::string> build_args;  // K=V
  int64_t timeout_seconds = 3600;
  uint64_t max_output_bytes = uint64_t{4} << 30;
  bool json = false, no_sandbox = false, keep_work_dir = false, quiet = false;
};

// Signs the build result with --attest KEY; returns where the attestation went.
Result<std::string> attest_result(const BuildArgs& a, const std::string& result_json) {
  if (attest::is_pkcs11_uri(a.attest_key) && a.node_id.empty()) {
    return Status::usage("--node-id is required with a pkcs11: key");
  }
  auto passphrase = QR_TRY(read_passphrase_file(a.passphrase_file));
  auto signer = QR_TRY(attest::open_signer(a.attest_key, passphrase));
  std::string node_id = a.node_id.empty() ? node_id_from_key_path(a.attest_key) : a.node_id;
  auto envelope =
      QR_TRY(attest::attest_build_result(result_json, *signer, node_id, attest::AttestFormat::kEnvelope, a.builder_id));
  std::string path = a.attest_out.empty() ? a.out + ".att.json" : a.attest_out;
  QR_RETURN_IF_ERROR(write_file_atomic(path, envelope + "\n", 0644));
  return path;
}

Status run_build(const BuildArgs& a) {
  clean_up_on_interrupt();  // on Ctrl-C: the running step stopped, the half-built output and checkout removed
  // What --attest needs is checked before the build, not after it has run for minutes.
  if (!a.attest_key.empty() && !a.builder_id.empty() && !attest::is_uri(a.builder_id)) {
    return Status::usage("--builder-id '" + a.builder_id + "' is not a URI (scheme:..., for example " +
                         "https://builders.example.org/node-a)");
  }
  builder::BuildOptions o;
  o.repo = a.repo;
  o.commit = a.commit;
  o.recipe_path = a.recipe;
  o.output = a.out;
  if (!builder::parse_format(a.format, o.format)) {
    return Status::usage("--format must be oci, oci-archive or docker-archive, not " + a.format);
  }
  // Like `quorate normalize`, the environment's SOURCE_DATE_EPOCH applies when the flag is absent.
  o.source_date_epoch = QR_TRY(source_date_epoch_of(a.source_date_epoch, std::getenv("SOURCE_DATE_EPOCH")));
  o.image_name = a.image_name;
  o.image_tag = a.image_tag;
  o.build_args = QR_TRY(parse_build_args(a.build_args));
  o.work_dir =
      a.work_dir.empty() ? std::filesystem::temp_directory_path() / "quorate-work" : std::filesystem::path(a.work_dir);
  o.keep_work_dir = a.keep_work_dir;
  o.base_dir = std::filesystem::current_path();
  o.base_layout = a.base_layout;
  o.sandbox = a.no_sandbox ? builder::Sandbox::kNone : builder::Sandbox::kBubblewrap;
  o.timeout = std::chrono::seconds(a.timeout_seconds);
  o.max_output_bytes = a.max_output_bytes;
  o.image_store = a.image_store;
  o.clock_ms = wall_clock_ms;
  Progress progress("build", a.quiet || a.json);
  o.progress = progress.lines();
  auto result = QR_TRY(builder::build(o));
  // A tool that failed or printed nothing is recorded as "" in the result and the attestation: say so now, on stderr
  // (also with --json or -q), rather than let an auditor find an empty version later.
  for (const auto& w : builder::tool_warnings(result)) {
    std::cerr << "quorate build: warning: " << mask_control(w) << "\n";  // quotes what a tool printed
  }
  std::string json = QR_TRY(builder::build_result_json(result));
  if (!a.result_out.empty()) QR_RETURN_IF_ERROR(write_file_atomic(a.result_out, json + "\n", 0644));
  std::string attestation;
  if (!a.attest_key.empty()) attestation = QR_TRY(attest_result(a, json));
  if (a.json) {
    std::cout << json << "\n";
    return Status::ok_status();
  }
  std::cout << "image   " << result.manifest_digest << "\n"
            << "content " << result.config_digest << "\n"
            << "wrote " << a.out << " (" << result.format << ", " << mask_control(result.image_name) << ":"
            << mask_control(result.ref_name) << ", " << result.layers.size() << " layers, sandbox " << result.sandbox
            << ")\n";  // the name and tag come from the recipe
  if (!attestation.empty()) std::cout << "attestation " << attestation << "\n";
  return Status::ok_status();
}

}  // namespace

void add_build_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<BuildArgs>();
  auto* cmd = app.add_subcommand("build", "Rebuild an OCI image from a Git commit and its recipe, deterministically");
  cmd->add_option("--repo", args->repo, "Repository: a local path or a URL libgit2 can clone")->required();
  cmd->add_option("--commit", args->commit, "Commit (any revision) to build")->required();
  cmd->add_option("--recipe", args->recipe,
                  "Recipe path inside the commit; Containerfile, Dockerfile, *.Containerfile and *.Dockerfile are "
                  "Containerfiles (default: quorate.toml, else Containerfile, else Dockerfile)");
  cmd->add_option("--build-arg", args->build_args,
                  "NAME=VALUE for a Containerfile ARG (repeatable; recorded in the result)");
  cmd->add_option("--tag", args->image_tag,
                  "The image's tag (ref name in index.json; default: the recipe's, or latest)");
  cmd->add_option("-o,--out", args->out, "Output: an OCI layout directory, or an archive file with --format")
      ->required();
  cmd->add_option("--format", args->format, "oci, oci-archive or docker-archive")->capture_default_str();
  cmd->add_option("--source-date-epoch", args->source_date_epoch,
                  "Timestamps of the image (default: env SOURCE_DATE_EPOCH, else the commit's committer time)");
  cmd->add_option("--result-out", args->result_out, "Write the build result JSON here (docs/build-result.md)");
  cmd->add_flag("--json", args->json, "Print the build result JSON instead of text");
  cmd->add_option("--work-dir", args->work_dir, "Scratch directory (default: $TMPDIR/quorate-work)");
  cmd->add_flag("--keep-work-dir", args->keep_work_dir, "Keep the scratch directory (checkouts, build log)");
  cmd->add_option("--base-layout", args->base_layout, "OCI layout directory holding the recipe's pinned base image");
  cmd->add_option("--image-name,--name", args->image_name,
                  "The image's name (overrides the recipe's; for a Containerfile, else its LABEL "
                  "org.opencontainers.image.ref.name)");
  cmd->add_option("--image-store", args->image_store,
                  "Where the recipe's builder image is looked up (quorate image import)")
      ->capture_default_str();
  cmd->add_flag("--no-sandbox", args->no_sandbox,
                "Run `run` steps on the host without bubblewrap (see docs/decisions.md; recorded in the result)");
  cmd->add_option(
         "--timeout", args->timeout_seconds,
         "Seconds the whole build may take (run steps, copies, layers); then it stops and a running step is killed")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{7} * 24 * 3600));
  cmd->add_option(
         "--max-output-bytes", args->max_output_bytes,
         "Largest total size of the regular files the run steps leave in their outputs and the copy steps copy (a "
         "Containerfile: its final layers, and what COPY and ADD write in all stages)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 50));
  cmd->add_option("--attest", args->attest_key,
                  "Sign the build result with this private key (PKCS#8 PEM, or a pkcs11: URI)");
  cmd->add_option(
      "--node-id", args->node_id,
      "With --attest: the node id the roster lists the key under (default: the key file's name without .key.pem)");
  cmd->add_option("--builder-id", args->builder_id,
                  "With --attest: runDetails.builder.id, a URI (default: https://quorate.dev/node/<node id>)");
  cmd->add_option("--attest-out", args->attest_out,
                  "With --attest: where the DSSE envelope goes (default: OUT.att.json)");
  cmd->add_option("--passphrase-file", args->passphrase_file, "With --attest: file whose first line decrypts the key");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress on stderr (progress is shown only when stderr is a terminal)");
  cmd->callback([args, &action] { action = [args] { return run_build(*args); }; });
}

}  // namespace quorate::cli
