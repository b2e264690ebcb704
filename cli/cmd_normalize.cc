// `quorate normalize`: a layer or an image in, its canonical form out, digests (or a JSON summary) printed.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <iostream>
#include <limits>

#include "interrupt.h"
#include "progress.h"
#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/image.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/oci.h"

namespace quorate::cli {
namespace {
namespace fs = std::filesystem;
namespace nz = quorate::normalize;

constexpr uint64_t kProgressThreshold = 256u << 20;  // inputs smaller than this finish before progress helps

struct NormalizeArgs {
  std::string input;
  std::string output;
  std::optional<int64_t> epoch;
  std::string mtime = "clamp";
  bool keep_owners = false;
  std::string compression = "gzip";
  int level = -1;
  bool json = false;
  std::string max_expanded;
  int threads = 0;
  std::string platform;
  bool quiet = false;
};

// "123", "64K", "512M", "64G" -> bytes.
Result<uint64_t> parse_size(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || text[0] == '-')
    return Status::usage("--max-expanded-size: not a size: " + text);
  std::string suffix(end);
  int shift = suffix.empty()  ? 0
              : suffix == "K" ? 10
              : suffix == "M" ? 20
              : suffix == "G" ? 30
              : suffix == "T" ? 40
                              : -1;
  if (shift < 0) return Status::usage("--max-expanded-size: unknown unit in " + text + " (use K, M, G or T)");
  if (shift > 0 && static_cast<uint64_t>(v) > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return Status::usage("--max-expanded-size: " + text + " does not fit in 64 bits (at most 16777215T)");
  }
  return static_cast<uint64_t>(v) << shift;
}

// The CLI is the one place that reads SOURCE_DATE_EPOCH from the environment; libraries get it as an option
// and check its range (normalize::check_source_date_epoch).
Result<int64_t> source_date_epoch(const NormalizeArgs& a) {
  auto epoch = QR_TRY(source_date_epoch_of(a.epoch, std::getenv("SOURCE_DATE_EPOCH")));
  return epoch.value_or(0);
}

Result<nz::LayerOptions> layer_options(const NormalizeArgs& a, Progress& progress) {
  nz::LayerOptions o;
  o.source_date_epoch = QR_TRY(source_date_epoch(a));
  if (a.mtime == "clamp")
    o.mtime = nz::MtimeMode::kClamp;
  else if (a.mtime == "set")
    o.mtime = nz::MtimeMode::kSet;
  else
    return Status::usage("--mtime must be clamp or set, not " + a.mtime);
  o.keep_owners = a.keep_owners;
  if (!nz::parse_compression(a.compression, o.compression)) {
    return Status::usage("--compression must be gzip, zstd or none, not " + a.compression);
  }
  o.level = a.level;
  o.threads = a.threads;
  if (!a.max_expanded.empty()) o.max_expanded_bytes = QR_TRY(parse_size(a.max_expanded));
  // Spools and extracted image tars go under $TMPDIR, read here because libraries never read the environment.
  o.temp_dir = temp_dir_from_env();
  std::error_code ec;
  if (fs::file_size(a.input, ec) >= kProgressThreshold && !ec) o.progress = progress.bytes("read");
  return o;
}

nlohmann::json repairs_json(const nz::LayerSummary& s) {
  return {{"reordered", s.reordered},
          {"times_clamped", s.times_clamped},
          {"owners_reset", s.owners_reset},
          {"pax_records_dropped", s.pax_records_dropped},
          {"duplicates_dropped", s.duplicates_dropped},
          {"paths_cleaned", s.paths_cleaned}};
}

nlohmann::json layer_json(const nz::LayerSummary& s) {
  return {{"input_digest", s.input_digest},
          {"input_size", s.input_size},
          {"digest", s.digest},
          {"size", s.size},
          {"diff_id", s.diff_id},
          {"tar_size", s.tar_size},
          {"media_type", s.media_type},
          {"entries", s.entries},
          {"repairs", repairs_json(s)}};
}

nlohmann::json common_json(const NormalizeArgs& a, const nz::LayerOptions& o) {
  return {{"canonical_form", nz::kCanonicalFormVersion},
          {"source_date_epoch", o.source_date_epoch},
          {"mtime", a.mtime},
          {"keep_owners", a.keep_owners},
          {"compressor", nz::compressor_id(o.compression, o.level)}};
}

Status run_layer(const NormalizeArgs& a, nz::LayerOptions o, Progress& progress) {
  o.hash_input = a.json;  // only the JSON summary shows the input digest: otherwise it is work for nothing
  auto out = AtomicFile::create(a.output);
  if (!out.ok()) return out.status().with_context("output " + a.output);
  auto s = QR_TRY(nz::normalize_layer(a.input, **out, o));
  QR_RETURN_IF_ERROR((*out)->commit());
  progress.done();  // the counter line ends before the digests are printed
  if (a.json) {
    nlohmann::json j = common_json(a, o);
    j["kind"] = "layer";
    j["input"] = {{"path", a.input}, {"digest", s.input_digest}, {"size", s.input_size}};
    j["output"] = {{"path", a.output}, {"digest", s.digest}, {"size", s.size}};
    j["diff_ids"] = {s.diff_id};
    j["layers"] = {layer_json(s)};
    j["entries"] = s.entries;
    j["repairs"] = repairs_json(s);
    std::cout << display_json(j, -1) << "\n";
  } else {
    std::cout << "digest:  " << s.digest << "\ndiff_id: " << s.diff_id << "\n";
  }
  return Status();
}

Status run_image(const NormalizeArgs& a, const nz::LayerOptions& o, Progress& progress) {
  nz::ImageOptions io;
  io.platform = a.platform;
  auto s = QR_TRY(nz::normalize_image(a.input, a.output, o, io));
  progress.done();
  if (a.json) {
    nlohmann::json j = common_json(a, o);
    nz::LayerSummary total;
    nlohmann::json layers = nlohmann::json::array(), diff_ids = nlohmann::json::array();
    for (const auto& l : s.layers) {
      layers.push_back(layer_json(l));
      diff_ids.push_back(l.diff_id);
      total.entries += l.entries;
      total.reordered += l.reordered;
      total.times_clamped += l.times_clamped;
      total.owners_reset += l.owners_reset;
      total.pax_records_dropped += l.pax_records_dropped;
      total.duplicates_dropped += l.duplicates_dropped;
      total.paths_cleaned += l.paths_cleaned;
    }
    j["kind"] = "image";
    j["input"] = {
        {"path", a.input}, {"format", nz::image_format_name(s.input_format)}, {"digest", s.input_manifest_digest}};
    j["output"] = {{"path", a.output},
                   {"manifest_digest", s.manifest_digest},
                   {"config_digest", s.config_digest},
                   {"ref_name", s.ref_name}};
    j["diff_ids"] = diff_ids;
    j["layers"] = layers;
    j["entries"] = total.entries;
    j["repairs"] = repairs_json(total);
    std::cout << display_json(j, -1) << "\n";
  } else {
    std::cout << "manifest digest: " << s.manifest_digest << "\nconfig digest:   " << s.config_digest
              << "\nref name:        " << mask_control(s.ref_name) << "\n";  // the input's annotation
  }
  return Status();
}

Status run_normalize(const NormalizeArgs& a) {
  clean_up_on_interrupt();  // no `.OUT.tmp.*` or extracted image left behind by Ctrl-C
  Progress progress("normalize", a.quiet);
  auto o = QR_TRY(layer_options(a, progress));
  auto format = QR_TRY(nz::detect_image_format(a.input));
  return format == nz::ImageFormat::kNotImage ? run_layer(a, o, progress) : run_image(a, o, progress);
}

}  // namespace

void add_normalize_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<NormalizeArgs>();
  auto* cmd = app.add_subcommand(
      "normalize",
      "Rewrite a layer (tar, gz, zst, xz, bz2) or an image (docker-archive, OCI layout dir or tar) into its "
      "canonical form (canonical form version 1, docs/canonical-form.md)");
  cmd->add_option("input", args->input, "Layer or image; its kind is detected by content")->required();
  cmd->add_option("-o,--output", args->output, "Canonical layer FILE, or canonical OCI layout DIR for an image")
      ->required();
  cmd->add_option("--source-date-epoch", args->epoch,
                  "Time for clamped/set mtimes and image dates (default: env SOURCE_DATE_EPOCH, else 0)");
  cmd->add_option("--mtime", args->mtime, "clamp (mtime = min(mtime, epoch), default) or set (mtime = epoch)");
  cmd->add_flag("--keep-owners", args->keep_owners, "Keep uid/gid and user/group names instead of 0 and \"\"");
  cmd->add_option("--compression", args->compression, "Layer compression: gzip (default), zstd or none");
  cmd->add_option("--level", args->level, "Compression level (default: gzip 6, zstd 3); part of the output's identity");
  cmd->add_flag("--json", args->json, "Print a JSON summary: digests, diff_ids, entry counts, repairs");
  cmd->add_option(
      "--max-expanded-size", args->max_expanded,
      "Refuse a layer expanding beyond this (default " + std::to_string(nz::kDefaultMaxExpandedBytes >> 30) +
          "G); expanded bytes are spooled under $TMPDIR (default /tmp), which needs that much room. An "
          "image's distinct layers (and an image tar's members) may expand to " +
          std::to_string(nz::kDefaultMaxImageExpandedBytes >> 30) + "G together, or to this size if larger");
  cmd->add_option(
      "--threads", args->threads,
      "Compression threads (default 0: gzip one per core, zstd one worker, ~25 MiB each); never changes output bytes");
  cmd->add_option("--platform", args->platform, "os/arch[/variant] to pick from a multi-platform image");
  cmd->add_flag("-q,--quiet", args->quiet,
                "No progress on stderr (shown only on a terminal, for inputs of 256 MiB and more)");
  cmd->callback([args, &action] { action = [args] { return run_normalize(*args); }; });
}

}  // namespace quorate::cli
