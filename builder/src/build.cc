// The build pipeline, as a flat list of passes over one BuildContext (mold's style): each pass reads what the
// earlier ones left in the context and adds its own part.
#include "quorate/builder/build.h"

#include <archive.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <set>

#include "base_image.h"
#include "containerfile_build.h"
#include "deadline.h"
#include "image_archive.h"
#include "output_tree.h"
#include "quorate/builder/containerfile.h"
#include "quorate/builder/recipe.h"
#include "quorate/builder/reference.h"
#include "quorate/builder/source.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/core/temporaries.h"
#include "quorate/core/time.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/oci.h"

namespace quorate::builder {
namespace {

namespace fs = std::filesystem;
using normalize::Entry;
using normalize::EntryType;

struct BuildContext {
  explicit BuildContext(const BuildOptions& o) : opt(o), deadline(o) {}
  const BuildOptions& opt;
  BuildDeadline deadline;           // the whole build's, from build()'s start
  std::optional<TempDir> work_dir;  // this build's scratch directory, removed at the end unless kept
  fs::path work;                    // its path
  std::unique_ptr<GitSource> source;
  std::string recipe_path;  // options.recipe_path, or the one found when it is empty
  Recipe recipe;
  int64_t epoch = 0;
  Sandbox sandbox = Sandbox::kNone;
  std::map<std::string, std::string> run_env;
  std::optional<BaseImageData> base;
  std::vector<fs::path> step_outputs;                  // per step; empty for copy steps
  std::vector<std::vector<OutputEntry>> step_entries;  // per step: what its $OUT held, read without following links
  uint64_t output_bytes = 0;  // regular-file bytes of all run steps' outputs, then of the copy steps, so far
  fs::path builder_rootfs;    // the verified builder image's root file system, when pinned
  std::optional<imagestore::RootfsLease> builder_rootfs_lease;  // held for the whole build: no rm under us
  std::map<std::string, std::string> builder_env;               // its config's Env
  std::optional<AtomicDir> layout_dir;
  std::optional<normalize::OciLayoutWriter> layout;
  std::vector<normalize::Descriptor> layer_descriptors;
  nlohmann::json config;
  normalize::Descriptor manifest;
  BuildResult result;
};

// "1.5 MB", "312 KB", "17 bytes": progress lines only, never output bytes.
std::string size_text(uint64_t bytes) {
  char buf[32];
  if (bytes >= 1000000) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  } else if (bytes >= 1000) {
    std::snprintf(buf, sizeof buf, "%.0f KB", static_cast<double>(bytes) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  }
  return buf;
}
std::string seconds_text(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

void progress(BuildContext& ctx, const std::string& line) {
  if (ctx.opt.progress) ctx.opt.progress(line);
}

std::string step_name(const BuildContext& ctx, size_t i) {
  return "step " + std::to_string(i + 1) + "/" + std::to_string(ctx.recipe.steps.size()) + " (" + ctx.recipe.path +
         ":" + std::to_string(ctx.recipe.steps[i].line) + ")";
}

normalize::Compression compression(const Recipe& r) {
  normalize::Compression c = normalize::Compression::kGzip;
  normalize::parse_compression(r.compression, c);
  return c;
}

// ---- passes ----

// Absolute: the sandbox runs steps with `/` as their working directory, so a relative work directory (the
// steps' /src, /out and /tmp are bound from it) would name nothing there.
Status make_work_dir(BuildContext& ctx) {
  if (ctx.opt.work_dir.empty()) return Status::usage("no work directory given");
  std::error_code ec;
  fs::path dir = fs::absolute(ctx.opt.work_dir, ec);
  if (!ec) fs::create_directories(dir, ec);
  if (ec) return Status::io("create work directory " + ctx.opt.work_dir.string() + ": " + ec.message());
  ctx.work_dir = QR_TRY(TempDir::create(dir, "build-"));
  ctx.work = ctx.work_dir->path();
  return Status();
}

// Options that come from outside (a CLI flag, a node's build request) are checked before any work.
Status check_options(const BuildContext& ctx) {
  if (!ctx.opt.image_name.empty()) {
    QR_RETURN_IF_ERROR(
        check_image_name(ctx.opt.image_name, "image name override (--image-name, BuildRequest.image_name)"));
  }
  if (ctx.opt.timeout.count() <= 0) return Status::usage("the build timeout must be positive");
  if (ctx.opt.max_output_bytes == 0) return Status::usage("the output size limit must be positive");
  return Status();
}

// The output is claimed first, so that a build that cannot write its result fails before doing any work.
Status open_output(BuildContext& ctx) {
  if (ctx.opt.output.empty()) return Status::usage("no output path given");
  fs::path layout_path = ctx.opt.output;
  if (ctx.opt.format != OutputFormat::kOci) {
    std::error_code ec;
    if (fs::is_directory(ctx.opt.output, ec)) {
      return Status::usage("output " + ctx.opt.output.string() + " is a directory; " + format_name(ctx.opt.format) +
                           " writes a file");
    }
    layout_path = ctx.work / "layout";
  }
  auto dir = AtomicDir::create(layout_path);
  if (!dir.ok()) return dir.status().with_context("output " + ctx.opt.output.string());
  ctx.layout_dir.emplace(std::move(dir).value());
  ctx.layout.emplace(QR_TRY(normalize::OciLayoutWriter::open(ctx.layout_dir->path())));
  return Status();
}

Status open_source(BuildContext& ctx) {
  progress(ctx, "reading " + ctx.opt.repo + " at " + ctx.opt.commit);
  CloneLimits limits;
  limits.keep_going = [&] { return ctx.deadline.check(); };
  ctx.source = QR_TRY(GitSource::open(ctx.opt.repo, ctx.opt.commit, ctx.work / "clone", limits));
  ctx.epoch = ctx.opt.source_date_epoch.value_or(ctx.source->commit_time());
  if (ctx.epoch < 0) return Status::usage("SOURCE_DATE_EPOCH must not be negative");
  return Status();
}

// With no recipe path given: quorate.toml, else Containerfile, else Dockerfile at the commit's root.
Status find_recipe(BuildContext& ctx) {
  ctx.recipe_path = ctx.opt.recipe_path;
  if (!ctx.recipe_path.empty()) return Status();
  for (const char* name : {"quorate.toml", "Containerfile", "Dockerfile"}) {
    if (ctx.source->read_path(name).ok()) {
      ctx.recipe_path = name;
      return Status();
    }
  }
  return Status::not_found("no quorate.toml, Containerfile or Dockerfile at the root of commit " +
                           ctx.source->commit_id());
}

Status read_recipe(BuildContext& ctx) {
  auto text = ctx.source->read_path(ctx.recipe_path);
  if (!text.ok())
    return Status::not_found("recipe " + ctx.recipe_path + " not found in commit " + ctx.source->commit_id());
  if (!ctx.opt.build_args.empty())
    return Status::usage("--build-arg is for Containerfiles; " + ctx.recipe_path + " is a quorate.toml recipe");
  ctx.recipe = QR_TRY(parse_recipe(*text, ctx.recipe_path));
  if (!ctx.opt.image_tag.empty()) ctx.recipe.tag = ctx.opt.image_tag;
  if (!ctx.opt.image_name.empty()) ctx.recipe.name = ctx.opt.image_name;
  return Status();
}

Status read_base(BuildContext& ctx) {
  if (!ctx.recipe.base) return Status();
  const BaseImage& b = *ctx.recipe.base;
  if (b.from_store) {
    if (ctx.opt.image_store.empty())
      return Status::usage("the recipe's base image " + b.name + " is taken from the image store, but none is given");
    std::error_code ec;
    if (!fs::exists(ctx.opt.image_store / "blobs" / "sha256" / digest_hex(b.digest), ec)) {
      return Status::not_found("base image " + b.name + "@" + b.digest + " is not in the image store " +
                               ctx.opt.image_store.string() + "; get it with `quorate image pull " + b.name + "@" +
                               b.digest + "` or `quorate image import OCI-LAYOUT-OR-ARCHIVE`");
    }
  }
  fs::path layout = b.from_store ? ctx.opt.image_store : fs::path();
  if (layout.empty()) layout = ctx.opt.base_layout.empty() ? fs::path(b.layout) : ctx.opt.base_layout;
  if (layout.empty()) {
    return Status::usage("recipe pins base image " + b.name +
                         " but no layout directory is given (base.layout or --base-layout)");
  }
  if (layout.is_relative() && !ctx.opt.base_dir.empty()) layout = ctx.opt.base_dir / layout;
  ctx.base = QR_TRY(read_base_image(layout, b.name, b.digest));
  std::string os = ctx.base->config.value("os", ""), arch = ctx.base->config.value("architecture", "");
  if (os != ctx.recipe.os || arch != ctx.recipe.architecture) {
    return Status::bad_input("base image " + b.name + " is " + os + "/" + arch + ", the recipe builds " +
                             ctx.recipe.os + "/" + ctx.recipe.architecture);
  }
  return Status();
}

// The pinned builder image: every blob hashed against the pin, unpacked once, before any step runs.
Status read_builder_image(BuildContext& ctx) {
  if (!ctx.recipe.build_image) return Status();
  const BuilderImage& b = *ctx.recipe.build_image;
  if (ctx.opt.sandbox == Sandbox::kNone) {
    return Status::usage("--no-sandbox cannot run a recipe with a builder image ([build] image = " + b.reference +
                         "): the host would leak into the build");
  }
  if (ctx.opt.image_store.empty())
    return Status::usage("the recipe pins builder image " + b.reference + " but no image store is given");
  auto store = QR_TRY(imagestore::ImageStore::open(ctx.opt.image_store));
  progress(ctx, "verifying builder image " + b.reference);
  auto image = store.verify(b.digest);
  if (!image.ok()) return image.status().with_context("builder image " + b.name);
  auto lease = store.rootfs(*image, ctx.opt.progress);
  if (!lease.ok()) return lease.status();
  ctx.builder_rootfs = lease->path();
  ctx.builder_rootfs_lease.emplace(std::move(*lease));
  const auto& config = image->config;
  if (config.contains("config") && config["config"].is_object() && config["config"].contains("Env") &&
      config["config"]["Env"].is_array()) {
    for (const auto& kv : config["config"]["Env"]) {
      if (!kv.is_string()) continue;
      std::string s = kv.get<std::string>();
      auto eq = s.find('=');
      if (eq != std::string::npos && eq > 0) ctx.builder_env[s.substr(0, eq)] = s.substr(eq + 1);
    }
  }
  ctx.result.builder_image = std::make_pair(b.name, b.digest);
  return Status();
}

Status prepare_run_env(BuildContext& ctx) {
  ctx.sandbox = QR_TRY(resolve_sandbox(ctx.opt.sandbox, ctx.opt.bwrap));
  if (!ctx.builder_rootfs.empty()) {
    if (ctx.sandbox != Sandbox::kBubblewrap) {
      return Status::unsupported("a builder image needs bubblewrap, which does not work here");
    }
    // The image's Env under the recipe's, PATH from the image unless the recipe sets it, then the fixed ones.
    auto& env = ctx.run_env;
    env = ctx.builder_env;
    if (!ctx.recipe.build_path.empty()) env["PATH"] = ctx.recipe.build_path;
    if (!env.count("PATH")) env["PATH"] = ctx.opt.default_path;
    for (const auto& [k, v] : ctx.recipe.build_env) env[k] = v;
    env["HOME"] = "/tmp";
    env["TZ"] = "UTC";
    env["LC_ALL"] = "C.UTF-8";
    env["SOURCE_DATE_EPOCH"] = std::to_string(ctx.epoch);
    return Status();
  }
  auto& env = ctx.run_env;
  env["PATH"] = ctx.recipe.build_path.empty() ? ctx.opt.default_path : ctx.recipe.build_path;
  env["HOME"] = ctx.sandbox == Sandbox::kBubblewrap ? "/tmp" : (ctx.work / "home").string();
  env["TZ"] = "UTC";
  env["LC_ALL"] = "C.UTF-8";
  env["SOURCE_DATE_EPOCH"] = std::to_string(ctx.epoch);
  for (const auto& [k, v] : ctx.recipe.build_env) env[k] = v;
  return Status();
}

Result<RunSpec> make_run_spec(BuildContext& ctx, const fs::path& dir, const Step* step) {
  RunSpec spec;
  spec.src_dir = dir / "src";
  spec.out_dir = dir / "out";
  spec.tmp_dir = dir / "tmp";
  for (const auto& d : {spec.src_dir, spec.out_dir, spec.tmp_dir}) {
    std::error_code ec;
    fs::create_directories(d, ec);
    if (ec) return Status::io("create " + d.string() + ": " + ec.message());
    ::chmod(d.c_str(), 0755);
  }
  if (ctx.sandbox == Sandbox::kNone) ctx.run_env["HOME"] = spec.tmp_dir.string();
  spec.env = ctx.run_env;
  if (step) {
    for (const auto& [k, v] : step->env) spec.env[k] = v;
    spec.argv = step->argv;
    spec.workdir = step->workdir;
  }
  spec.log = ctx.work / "build.log";
  spec.sandbox = ctx.sandbox;
  spec.bwrap = ctx.opt.bwrap;
  spec.cancel = ctx.opt.cancel;
  spec.deadline = ctx.deadline.at();
  spec.rootfs = ctx.builder_rootfs;
  spec.watched = {dir};
  spec.max_growth = growth_bound(ctx.opt.max_output_bytes);
  return spec;
}

// `tool --version` of every tool the recipe names, as the steps will see it.
Status record_tools(BuildContext& ctx) {
  if (ctx.recipe.tools.empty()) return Status();
  auto spec = QR_TRY(make_run_spec(ctx, ctx.work / "tools", nullptr));
  for (const auto& tool : ctx.recipe.tools) {
    spec.argv = {"/bin/sh", "-c", tool + " --version 2>&1"};
    ctx.result.tools[tool] = valid_utf8(run_for_line(spec));  // a tool may print any bytes
  }
  return Status();
}

// A failed step's status, saying which limit it hit when it hit one.
Status step_failure(const BuildContext& ctx, size_t i, const Status& s) {
  std::string limit;
  if (s.message().rfind("timed out", 0) == 0 && s.message().find(ctx.deadline.limit_text()) == std::string::npos) {
    limit = ctx.deadline.limit_text();
  }
  return s.with_context(step_name(ctx, i) + " " + ctx.recipe.steps[i].describe() + limit);
}

// Whether step `i` may go on: the build's deadline and cancel flag, named with the step when they end it.
Status within_deadline(const BuildContext& ctx, size_t i) {
  Status s = ctx.deadline.check();
  return s.ok() ? s : step_failure(ctx, i, s);
}

// What the step left in $OUT, read without following links, within what is left of the output limit.
Status read_step_output(BuildContext& ctx, size_t i, const fs::path& out) {
  OutputLimits limits;
  limits.max_bytes = ctx.opt.max_output_bytes;
  auto entries = read_output_tree(out, limits, ctx.output_bytes);
  if (!entries.ok()) {
    return entries.status().with_context(step_name(ctx, i) + " (output limit " +
                                         std::to_string(ctx.opt.max_output_bytes) +
                                         " bytes for all run steps: quorate build --max-output-bytes, node "
                                         "build.max_output_bytes)");
  }
  ctx.step_entries[i] = std::move(*entries);
  ctx.step_outputs[i] = out;
  return Status();
}

Status run_steps(BuildContext& ctx) {
  bool any_run = std::any_of(ctx.recipe.steps.begin(), ctx.recipe.steps.end(),
                             [](const Step& s) { return s.kind == Step::Kind::kRun; });
  ctx.step_outputs.resize(ctx.recipe.steps.size());
  ctx.step_entries.resize(ctx.recipe.steps.size());
  if (!any_run) return Status();
  QR_RETURN_IF_ERROR(prepare_run_env(ctx));
  QR_RETURN_IF_ERROR(record_tools(ctx));
  for (size_t i = 0; i < ctx.recipe.steps.size(); ++i) {
    const Step& step = ctx.recipe.steps[i];
    if (step.kind != Step::Kind::kRun) continue;
    QR_RETURN_IF_ERROR(within_deadline(ctx, i));
    progress(ctx, step_name(ctx, i) + ": " + step.describe());
    auto spec = QR_TRY(make_run_spec(ctx, ctx.work / ("step-" + std::to_string(i + 1)), &step));
    QR_RETURN_IF_ERROR(ctx.source->checkout(spec.src_dir, ctx.epoch));
    std::optional<int64_t> began;
    if (ctx.opt.clock_ms) began = ctx.opt.clock_ms();
    Status s = run_step(spec);
    if (!s.ok()) return step_failure(ctx, i, s);
    if (began) progress(ctx, step_name(ctx, i) + ": ran in " + seconds_text(ctx.opt.clock_ms() - *began));
    QR_RETURN_IF_ERROR(read_step_output(ctx, i, spec.out_dir));
    // Nothing reads a step's checkout or /tmp again: one checkout of the commit on disk at a time, not one a step.
    if (!ctx.opt.keep_work_dir) {
      (void)remove_tree(spec.src_dir);
      (void)remove_tree(spec.tmp_dir);
    }
  }
  return Status();
}

// ---- layers ----

// "/usr/local/bin" -> "usr/local/bin"; "/" -> "".
std::string image_rel(const std::string& to) {
  std::string out = to.substr(1);
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out;
}

std::string join(const std::string& dir, const std::string& rel) {
  if (dir.empty()) return rel;
  if (rel.empty()) return dir;
  return dir + "/" + rel;
}

// Adds every missing ancestor directory of the layer's entries (root-owned, 0755).
Status add_ancestors(normalize::CanonicalLayerWriter& writer, const std::set<std::string>& added) {
  std::set<std::string> missing;
  for (const auto& path : added) {
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      std::string dir = path.substr(0, slash);
      if (!added.count(dir)) missing.insert(dir);
    }
  }
  for (const auto& dir : missing) {
    Entry e;
    e.path = dir;
    e.type = EntryType::kDirectory;
    e.mode = 0755;
    QR_RETURN_IF_ERROR(writer.add(std::move(e)));
  }
  return Status();
}

bool selected(const std::string& rel, const Step& step, std::vector<bool>& used, const std::set<std::string>& dirs) {
  for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
    if (dirs.count(rel.substr(0, slash))) return true;
  }
  bool hit = false;
  for (size_t p = 0; p < step.patterns.size(); ++p) {
    if (glob_match(step.patterns[p], rel)) hit = used[p] = true;
  }
  return hit;
}

Status add_copy_entries(BuildContext& ctx, const Step& step, size_t index, normalize::CanonicalLayerWriter& writer) {
  std::string prefix = step.from.empty() ? "" : step.from + "/";
  std::string dest = image_rel(step.to);
  std::vector<bool> used(step.patterns.size(), false);
  std::set<std::string> matched_dirs, added;
  if (!dest.empty()) added.insert(dest);
  for (const auto& e : ctx.source->entries()) {
    if (e.path.compare(0, prefix.size(), prefix) != 0 || e.path.size() == prefix.size()) continue;
    std::string rel = e.path.substr(prefix.size());
    if (!selected(rel, step, used, matched_dirs)) continue;
    QR_RETURN_IF_ERROR(within_deadline(ctx, index));
    Entry entry;
    entry.path = join(dest, rel);
    entry.uid = step.uid;
    entry.gid = step.gid;
    entry.mtime = ctx.epoch;
    added.insert(entry.path);
    if (e.kind == TreeEntry::Kind::kDirectory) {
      matched_dirs.insert(rel);
      entry.type = EntryType::kDirectory;
      entry.mode = 0755;
      QR_RETURN_IF_ERROR(writer.add(std::move(entry)));
    } else if (e.kind == TreeEntry::Kind::kSymlink) {
      entry.type = EntryType::kSymlink;
      entry.mode = 0777;
      entry.link_target = QR_TRY(ctx.source->read_blob(e.oid));
      QR_RETURN_IF_ERROR(writer.add(std::move(entry)));
    } else {
      if (e.size > ctx.opt.max_output_bytes - ctx.output_bytes) {
        return Status::bad_input(
            step_name(ctx, index) + ": copy steps and run steps' outputs together are larger than " +
            std::to_string(ctx.opt.max_output_bytes) + " bytes (at " + e.path + ", " + std::to_string(e.size) +
            " bytes; output limit " + std::to_string(ctx.opt.max_output_bytes) +
            " bytes: quorate build --max-output-bytes, node build.max_output_bytes)");
      }
      ctx.output_bytes += e.size;
      entry.mode = step.mode.value_or(e.kind == TreeEntry::Kind::kExecutable ? 0755 : 0644);
      QR_RETURN_IF_ERROR(writer.add_bytes(std::move(entry), QR_TRY(ctx.source->read_blob(e.oid))));
    }
  }
  for (size_t p = 0; p < used.size(); ++p) {
    if (!used[p]) {
      return Status::bad_input(step_name(ctx, index) + ": copy pattern \"" + step.patterns[p] + "\"" +
                               (step.from.empty() ? "" : " (from " + step.from + ")") + " matches nothing in commit " +
                               ctx.source->commit_id());
    }
  }
  if (!dest.empty()) {
    Entry e;
    e.path = dest;
    e.type = EntryType::kDirectory;
    e.mode = 0755;
    QR_RETURN_IF_ERROR(writer.add(std::move(e)));
  }
  return add_ancestors(writer, added);
}

// A run step's output directory as read after the step (sorted, so hardlink groups resolve the same
// everywhere); symlinks stay symlinks with their text as written.
Status add_run_entries(BuildContext& ctx, const Step& step, size_t index, normalize::CanonicalLayerWriter& writer) {
  const fs::path& out = ctx.step_outputs[index];
  std::string dest = image_rel(step.to);
  std::set<std::string> added;
  if (!dest.empty()) added.insert(dest);
  HardlinkPaths links;
  for (const OutputEntry& o : ctx.step_entries[index]) {
    QR_RETURN_IF_ERROR(within_deadline(ctx, index));
    const struct stat& st = o.st;
    Entry e;
    e.path = join(dest, o.path);
    e.uid = step.uid;
    e.gid = step.gid;
    e.mtime = st.st_mtim.tv_sec;
    e.mode = st.st_mode & 07777;
    if (S_ISREG(st.st_mode) && step.mode) e.mode = *step.mode;
    added.insert(e.path);
    if (!QR_TRY(add_output_entry(writer, std::move(e), o, out / o.path, links))) {
      return Status::bad_input(step_name(ctx, index) + " left a device or socket in its output: " + o.path);
    }
  }
  if (!dest.empty()) {
    Entry e;
    e.path = dest;
    e.type = EntryType::kDirectory;
    e.mode = 0755;
    QR_RETURN_IF_ERROR(writer.add(std::move(e)));
  }
  return add_ancestors(writer, added);
}

Status copy_base_layers(BuildContext& ctx) {
  if (!ctx.base) return Status();
  for (size_t i = 0; i < ctx.base->layers.size(); ++i) {
    const BaseLayer& l = ctx.base->layers[i];
    const auto desc = QR_TRY(copy_base_layer(*ctx.layout, ctx.base->name, l.media_type, l.digest, l.blob));
    ctx.layer_descriptors.push_back(desc);
    ctx.result.layers.push_back({desc.digest, desc.size, desc.media_type, ctx.base->diff_ids[i], true});
  }
  return Status();
}

Status write_layers(BuildContext& ctx) {
  QR_RETURN_IF_ERROR(copy_base_layers(ctx));
  normalize::LayerOptions options;
  options.source_date_epoch = ctx.epoch;
  options.keep_owners = true;  // every entry's owner is set explicitly: 0:0 or the step's owner
  options.compression = compression(ctx.recipe);
  options.level = ctx.recipe.compression_level;
  options.threads = ctx.opt.threads;
  options.temp_dir = ctx.work;
  options.keep_going = [&] { return ctx.deadline.check(); };
  for (size_t i = 0; i < ctx.recipe.steps.size(); ++i) {
    const Step& step = ctx.recipe.steps[i];
    normalize::CanonicalLayerWriter writer(options);
    if (step.kind == Step::Kind::kCopy) {
      progress(ctx, step_name(ctx, i) + ": " + step.describe());
      QR_RETURN_IF_ERROR(add_copy_entries(ctx, step, i, writer));
    } else {
      QR_RETURN_IF_ERROR(add_run_entries(ctx, step, i, writer));
    }
    auto blob = QR_TRY(ctx.layout->begin_blob());
    auto summary = writer.write(*blob);
    if (!summary.ok()) return step_failure(ctx, i, summary.status());
    QR_RETURN_IF_ERROR(blob->finish());
    auto desc = QR_TRY(blob->commit(summary->media_type));
    progress(ctx, step_name(ctx, i) + ": layer " + size_text(summary->tar_size) + " (" + size_text(desc.size) +
                      " compressed)");
    ctx.layer_descriptors.push_back(desc);
    ctx.result.layers.push_back({desc.digest, desc.size, desc.media_type, summary->diff_id, false});
  }
  return Status();
}

// ---- image ----

// Env merged by name: the base's order kept, values replaced, new names appended in sorted order.
nlohmann::json merge_env(const nlohmann::json& base_env, const std::map<std::string, std::string>& env) {
  nlohmann::json out = nlohmann::json::array();
  std::set<std::string> done;
  if (base_env.is_array()) {
    for (const auto& item : base_env) {
      std::string kv = item.is_string() ? item.get<std::string>() : "";
      std::string name = kv.substr(0, kv.find('='));
      auto it = env.find(name);
      out.push_back(it == env.end() ? kv : name + "=" + it->second);
      done.insert(name);
    }
  }
  for (const auto& [k, v] : env) {
    if (!done.count(k)) out.push_back(k + "=" + v);
  }
  return out;
}

nlohmann::json image_config_section(const BuildContext& ctx) {
  nlohmann::json base = ctx.base && ctx.base->config.contains("config") && ctx.base->config["config"].is_object()
                            ? ctx.base->config["config"]
                            : nlohmann::json::object();
  nlohmann::json c = base;
  const ImageConfig& r = ctx.recipe.config;
  nlohmann::json env = merge_env(base.value("Env", nlohmann::json::array()), r.env);
  if (!env.empty()) c["Env"] = env;
  if (r.entrypoint) c["Entrypoint"] = *r.entrypoint;
  if (r.cmd) c["Cmd"] = *r.cmd;
  if (r.workdir) c["WorkingDir"] = *r.workdir;
  if (r.user) c["User"] = *r.user;
  if (r.stop_signal) c["StopSignal"] = *r.stop_signal;
  for (const auto& port : r.exposed_ports) c["ExposedPorts"][port] = nlohmann::json::object();
  for (const auto& [k, v] : r.labels) c["Labels"][k] = v;
  c["Labels"]["org.opencontainers.image.revision"] = ctx.source->commit_id();
  c["Labels"]["org.opencontainers.image.source"] = ctx.recipe.source.empty() ? ctx.opt.repo : ctx.recipe.source;
  return c;
}

Status write_image(BuildContext& ctx) {
  std::string created = format_rfc3339(ctx.epoch);
  nlohmann::json history = nlohmann::json::array();
  nlohmann::json diff_ids = nlohmann::json::array();
  if (ctx.base && ctx.base->config.contains("history")) history = ctx.base->config["history"];
  for (const auto& step : ctx.recipe.steps) history.push_back({{"created", created}, {"created_by", step.describe()}});
  for (const auto& l : ctx.result.layers) diff_ids.push_back(l.diff_id);
  ctx.config = {{"architecture", ctx.recipe.architecture},
                {"os", ctx.recipe.os},
                {"created", created},
                {"config", image_config_section(ctx)},
                {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                {"history", history}};
  if (!ctx.recipe.variant.empty()) ctx.config["variant"] = ctx.recipe.variant;
  auto config_bytes = QR_TRY(canonical_json(ctx.config, "image config"));
  auto config = QR_TRY(ctx.layout->add_blob(normalize::kMediaTypeConfig, config_bytes));
  auto manifest = QR_TRY(normalize::make_manifest(config, ctx.layer_descriptors));
  ctx.manifest = QR_TRY(ctx.layout->add_blob(normalize::kMediaTypeManifest, manifest));
  QR_RETURN_IF_ERROR(ctx.layout->write_index(ctx.manifest, ctx.recipe.tag));
  ctx.result.config_digest = config.digest;
  return Status();
}

Status write_output(BuildContext& ctx) {
  switch (ctx.opt.format) {
    case OutputFormat::kOci:
      return ctx.layout_dir->commit();
    case OutputFormat::kOciArchive:
      return write_oci_archive(ctx.layout_dir->path(), ctx.opt.output, ctx.epoch, ctx.work,
                               ctx.recipe.name + ":" + ctx.recipe.tag);
    case OutputFormat::kDockerArchive:
      return write_docker_archive(ctx.layout_dir->path(), ctx.manifest.digest, ctx.recipe.name + ":" + ctx.recipe.tag,
                                  ctx.opt.output, ctx.epoch, ctx.work);
  }
  return Status::internal("unknown output format");
}

void make_result(BuildContext& ctx) {
  BuildResult& r = ctx.result;
  r.image_name = ctx.recipe.name;
  r.ref_name = ctx.recipe.tag;
  r.manifest_digest = ctx.manifest.digest;
  r.manifest_size = ctx.manifest.size;
  r.source_uri = ctx.opt.repo;
  // The attestation's resolvedDependencies URI is made from these: a local repository by its absolute path,
  // or the public repository URI the recipe states ([image] source).
  if (ctx.opt.repo.find("://") != std::string::npos) {
    r.source_locator = ctx.opt.repo;
  } else {
    std::error_code ec;
    auto abs = std::filesystem::absolute(ctx.opt.repo, ec);
    r.source_locator = ec ? ctx.opt.repo : abs.lexically_normal().string();
    if (r.source_locator.size() > 1 && r.source_locator.back() == '/') r.source_locator.pop_back();
  }
  r.source_public_uri = ctx.recipe.source;
  r.commit = ctx.source->commit_id();
  r.tree = ctx.source->tree_id();
  r.recipe_path = ctx.recipe_path;
  if (ctx.base) r.base_images.emplace_back(ctx.base->name, ctx.base->manifest_digest);
  r.os = ctx.recipe.os;
  r.architecture = ctx.recipe.architecture;
  r.variant = ctx.recipe.variant;
  r.source_date_epoch = ctx.epoch;
  auto c = compression(ctx.recipe);
  r.compressor = normalize::compressor_id(c, ctx.recipe.compression_level);
  r.toolchain = {{"quorate", QUORATE_VERSION},
                 {"libgit2", libgit2_version()},
                 {"libarchive", archive_version_string()},
                 {"zlib", zlibVersion()},
                 {"zstd", ZSTD_versionString()}};
  std::string la = r.toolchain["libarchive"];
  if (la.rfind("libarchive ", 0) == 0) r.toolchain["libarchive"] = la.substr(11);
  r.environment = ctx.run_env;
  r.sandbox = ctx.run_env.empty() ? "none" : sandbox_name(ctx.sandbox);
  r.run_environment = ctx.run_env.empty() ? "none" : r.builder_image ? "image" : "host";
  r.output = ctx.opt.output;
  r.format = format_name(ctx.opt.format);
}

// A Containerfile goes through its own lowering (containerfile_build.cc); the output and the result are
// written here as for a recipe.
Status run_containerfile(BuildContext& ctx) {
  ContainerfileInputs in{ctx.opt, *ctx.source, ctx.recipe_path, ctx.work, ctx.epoch, *ctx.layout, ctx.deadline};
  auto image = QR_TRY(build_containerfile(in));
  ctx.recipe.path = ctx.recipe_path;
  ctx.recipe.name = image.name;
  ctx.recipe.tag = image.tag;
  ctx.recipe.os = image.os;
  ctx.recipe.architecture = image.architecture;
  ctx.manifest = image.manifest;
  ctx.result.config_digest = image.config_digest;
  ctx.result.layers = image.layers;
  QR_RETURN_IF_ERROR(write_output(ctx));
  make_result(ctx);
  ctx.result.recipe_kind = "containerfile";
  ctx.result.build_args = ctx.opt.build_args;
  ctx.result.base_images = image.base_images;
  ctx.result.environment = image.environment;
  ctx.result.sandbox = image.ran ? sandbox_name(Sandbox::kBubblewrap) : "none";
  // RUN steps execute in their stage's root, made of FROM images pinned by digest (named in base_images),
  // never on the host's toolchain: "image"; no RUN at all: "none".
  ctx.result.run_environment = image.ran ? "image" : "none";
  return Status();
}

Status run_pipeline(BuildContext& ctx) {
  QR_RETURN_IF_ERROR(check_options(ctx));
  QR_RETURN_IF_ERROR(open_output(ctx));
  QR_RETURN_IF_ERROR(open_source(ctx));
  QR_RETURN_IF_ERROR(find_recipe(ctx));
  if (is_containerfile_path(ctx.recipe_path)) return run_containerfile(ctx);
  QR_RETURN_IF_ERROR(read_recipe(ctx));
  QR_RETURN_IF_ERROR(read_base(ctx));
  QR_RETURN_IF_ERROR(read_builder_image(ctx));
  QR_RETURN_IF_ERROR(run_steps(ctx));
  QR_RETURN_IF_ERROR(write_layers(ctx));
  QR_RETURN_IF_ERROR(write_image(ctx));
  QR_RETURN_IF_ERROR(write_output(ctx));
  make_result(ctx);
  return Status();
}

}  // namespace

const char* format_name(OutputFormat f) {
  switch (f) {
    case OutputFormat::kOci:
      return "oci";
    case OutputFormat::kOciArchive:
      return "oci-archive";
    case OutputFormat::kDockerArchive:
      return "docker-archive";
  }
  return "?";
}

bool parse_format(const std::string& name, OutputFormat& out) {
  for (auto f : {OutputFormat::kOci, OutputFormat::kOciArchive, OutputFormat::kDockerArchive}) {
    if (name == format_name(f)) {
      out = f;
      return true;
    }
  }
  return false;
}

namespace {

// Moves `from` to `to` atomically: rename, or on another file system a copy written atomically (the reader
// sees no half log) and the original removed.
Status move_atomically(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return Status();
  if (errno != EXDEV) return Status::from_errno("move " + from.string() + " to " + to.string(), errno);
  auto bytes = QR_TRY(read_file(from, uint64_t{1} << 30));
  QR_RETURN_IF_ERROR(write_file_atomic(to, bytes, 0644));
  std::error_code ec;
  fs::remove(from, ec);
  return Status();
}

// A failed build's log outlives its scratch directory: moved beside it (WORK_DIR/build-XXXXXX.log) or into
// options.failed_log_dir, and the error names where it now is.
Status keep_build_log(BuildContext& ctx, Status status) {
  fs::path log = ctx.work / "build.log";
  std::error_code ec;
  if (!fs::is_regular_file(log, ec)) return status;
  fs::path kept = ctx.work.string() + ".log";
  // When the log directory cannot be made, the log stays beside the scratch directory (still named below).
  if (!ctx.opt.failed_log_dir.empty() &&
      (::mkdir(ctx.opt.failed_log_dir.c_str(), 0700) == 0 || fs::is_directory(ctx.opt.failed_log_dir, ec))) {
    kept = ctx.opt.failed_log_dir / (ctx.work.filename().string() + ".log");
  }
  if (!move_atomically(log, kept).ok()) return status;
  std::string message = status.message();
  for (size_t at = message.find(log.string()); at != std::string::npos; at = message.find(log.string(), at)) {
    message.replace(at, log.string().size(), kept.string());
    at += kept.string().size();
  }
  if (message.find(kept.string()) == std::string::npos) message += " (build log kept: " + kept.string() + ")";
  switch (status.code()) {
    case Code::kUsage:
      return Status::usage(message);
    case Code::kBadInput:
      return Status::bad_input(message);
    case Code::kNotFound:
      return Status::not_found(message);
    case Code::kIo:
      return Status::io(message);
    case Code::kVerification:
      return Status::verification(message);
    case Code::kUnsupported:
      return Status::unsupported(message);
    default:
      return Status::internal(message);
  }
}

}  // namespace

Result<BuildResult> build(const BuildOptions& options) {
  BuildContext ctx(options);
  std::optional<int64_t> started;
  if (options.clock_ms) started = options.clock_ms();
  QR_RETURN_IF_ERROR(make_work_dir(ctx));
  Status status;
  try {
    status = run_pipeline(ctx);
  } catch (const std::exception& e) {  // std::filesystem and nlohmann throw; nothing escapes the module
    status = Status::internal(std::string("build failed: ") + e.what());
  }
  ctx.layout_dir.reset();  // an uncommitted layout is removed here
  if (!status.ok() && !options.keep_work_dir) status = keep_build_log(ctx, std::move(status));
  if (options.keep_work_dir) ctx.work_dir->release();
  ctx.work_dir.reset();
  QR_RETURN_IF_ERROR(status);
  ctx.result.started_ms = started;
  if (options.clock_ms) ctx.result.finished_ms = options.clock_ms();
  return std::move(ctx.result);
}

std::vector<std::string> tool_warnings(const BuildResult& result) {
  std::vector<std::string> out;
  for (const auto& [tool, version] : result.tools) {
    if (!version.empty()) continue;
    out.push_back("[build] tools: `" + tool + " --version` failed or printed nothing where the steps run (" +
                  (result.builder_image ? "the builder image" : "the host") + "): is " + tool +
                  " there? It is recorded with an empty version");
  }
  return out;
}

Result<std::string> build_result_json(const BuildResult& r) {
  nlohmann::json layers = nlohmann::json::array(), diff_ids = nlohmann::json::array();
  for (const auto& l : r.layers) {
    layers.push_back({{"digest", l.digest}, {"size", l.size}, {"media_type", l.media_type}});
    diff_ids.push_back(l.diff_id);
  }
  nlohmann::json bases = nlohmann::json::array();
  for (const auto& [name, digest] : r.base_images) bases.push_back({{"name", name}, {"digest", digest}});
  nlohmann::json builder_image = nullptr;
  if (r.builder_image) builder_image = {{"name", r.builder_image->first}, {"digest", r.builder_image->second}};
  nlohmann::json toolchain = r.toolchain;
  if (!r.tools.empty()) toolchain["run"] = r.tools;
  nlohmann::json platform = {{"os", r.os}, {"architecture", r.architecture}};
  if (!r.variant.empty()) platform["variant"] = r.variant;
  nlohmann::json j = {
      {"schema", "https://quorate.dev/build-result/v1"},
      {"canonical_form", normalize::kCanonicalFormVersion},
      {"image",
       {{"name", r.image_name},
        {"manifest_digest", r.manifest_digest},
        {"config_digest", r.config_digest},
        {"diff_ids", diff_ids},
        {"layers", layers}}},
      {"source", {{"uri", r.source_uri}, {"commit", r.commit}, {"tree", r.tree}, {"recipe_path", r.recipe_path}}},
      {"base_images", bases},
      {"platform", platform},
      {"source_date_epoch", r.source_date_epoch},
      {"compressor", r.compressor},
      {"toolchain", toolchain},
      {"environment", r.environment},
      {"sandbox", r.sandbox},
      {"run_environment", r.run_environment},
  };
  if (r.builder_image) j["builder_image"] = builder_image;
  if (!r.source_locator.empty()) j["source"]["locator"] = r.source_locator;
  if (!r.source_public_uri.empty()) j["source"]["public_uri"] = r.source_public_uri;
  if (r.recipe_kind != "quorate.toml") {  // absent for recipes, so their results keep their bytes
    j["source"]["recipe_kind"] = r.recipe_kind;
    j["build_args"] = r.build_args;
  }
  if (r.started_ms) j["started_on"] = format_rfc3339(*r.started_ms / 1000);
  if (r.finished_ms) j["finished_on"] = format_rfc3339(*r.finished_ms / 1000);
  return canonical_json(j, "build result");
}

}  // namespace quorate::builder
