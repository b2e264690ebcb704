// The in-toto Statement v1 / SLSA Provenance v1 of a build result, and its strict parser.
#include "quorate/attest/statement.h"

#include "json.h"
#include "quorate/core/build_args.h"
#include "quorate/core/encoding.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"

namespace quorate::attest {

using detail::get_array;
using detail::get_int;
using detail::get_object;
using detail::get_string;
using detail::Json;
using detail::JsonMember;
using detail::JsonValue;
using detail::sorted_members;
using detail::to_json;

namespace {

constexpr std::string_view kBuildResultSchema = "https://quorate.dev/build-result/v1";
constexpr std::string_view kConfigMediaType = "application/vnd.oci.image.config.v1+json";

// get_string, copied: the build side keeps what it reads, in the statement it writes.
Result<std::string> get_text(const JsonValue& obj, const char* key, std::string_view what) {
  return std::string(QR_TRY(get_string(obj, key, what)));
}

Result<std::string> get_digest(const JsonValue& obj, const char* key, std::string_view what) {
  auto d = QR_TRY(get_text(obj, key, what));
  Status s = check_digest(d);
  if (!s.ok()) return Status::bad_input(std::string(what) + ": \"" + key + "\" is not sha256:<64 lowercase hex>");
  return d;
}

Json digest_set(std::string_view digest) { return {{"sha256", digest_hex(digest)}}; }

Result<std::string> get_time(const JsonValue& obj, const char* key, std::string_view what) {
  auto text = QR_TRY(get_string(obj, key, what));
  auto t = parse_rfc3339(text);
  if (!t.ok()) return Status::bad_input(std::string(what) + ": \"" + key + "\": " + t.status().message());
  return format_rfc3339(*t);
}

// Toolchain entries become builder.version, a flat map of strings: nested objects join their keys with '.'.
// In byte order of the names, so that the result does not depend on the order the build result lists them in.
Status flatten_versions(const JsonValue& obj, const std::string& prefix, Json& out) {
  for (const JsonMember* m : sorted_members(obj)) {
    std::string key = prefix.empty() ? std::string(m->name) : prefix + "." + std::string(m->name);
    const JsonValue& v = m->value;
    if (v.is_object()) {
      QR_RETURN_IF_ERROR(flatten_versions(v, key, out));
    } else if (v.is_string()) {
      out[key] = std::string(v.string());
    } else {
      out[key] = QR_TRY(canonical_json(to_json(v), "build result: toolchain: " + key));
    }
  }
  return Status();
}

// The parts of the build result the statement carries, read and checked field by field.
Result<Json> build_definition(const JsonValue& r, const JsonValue& source, std::string_view what) {
  auto uri = QR_TRY(get_text(source, "uri", "build result: source"));
  auto commit = QR_TRY(get_text(source, "commit", "build result: source"));
  if (!is_lower_hex(commit, 40)) return Status::bad_input("build result: source: \"commit\" is not 40 lowercase hex");
  auto recipe = QR_TRY(get_text(source, "recipe_path", "build result: source"));
  Json git_digest = {{"gitCommit", commit}};
  if (source.contains("tree")) git_digest["gitTree"] = QR_TRY(get_text(source, "tree", "build result: source"));
  // resolvedDependencies[].uri is a URI (SLSA v1): the public repository URI the recipe states, else the
  // builder's locator (an absolute path for a local repository: git+file:///abs/path); results older than
  // the fields get one made from the uri as given.
  std::string locator = uri;
  if (source.contains("locator")) locator = QR_TRY(get_text(source, "locator", "build result: source"));
  std::string dep_uri = source_dependency_uri(locator);
  if (source.contains("public_uri"))
    dep_uri = source_dependency_uri(QR_TRY(get_string(source, "public_uri", "build result: source")));
  if (!is_uri(dep_uri)) return Status::bad_input("build result: source: the repository is not a URI: " + dep_uri);
  Json deps = Json::array({{{"name", "source"}, {"uri", dep_uri}, {"digest", std::move(git_digest)}}});
  const JsonValue* bases = QR_TRY(get_array(r, "base_images", what));
  for (const auto& [_, b] : bases->items()) {
    if (!b.is_object()) return Status::bad_input("build result: base_images: an entry is not an object");
    auto name = QR_TRY(get_text(b, "name", "build result: base_images"));
    auto digest = QR_TRY(get_digest(b, "digest", "build result: base_images"));
    deps.push_back({{"name", name}, {"uri", "oci://" + name}, {"digest", digest_set(digest)}});
  }
  if (r.contains("builder_image")) {  // resolvedDependencies names it, marked as the build environment
    const JsonValue* b = QR_TRY(get_object(r, "builder_image", what));
    auto name = QR_TRY(get_text(*b, "name", "build result: builder_image"));
    auto digest = QR_TRY(get_digest(*b, "digest", "build result: builder_image"));
    deps.push_back({{"name", name},
                    {"uri", "oci://" + name},
                    {"digest", digest_set(digest)},
                    {"annotations", {{"role", "builder"}}}});
  }
  const JsonValue* platform = QR_TRY(get_object(r, "platform", what));
  auto canonical_form = QR_TRY(get_int(r, "canonical_form", what));
  auto source_date_epoch = QR_TRY(get_int(r, "source_date_epoch", what));
  auto compressor = QR_TRY(get_text(r, "compressor", what));
  Json internal = {
      {"canonicalForm", canonical_form},
      {"sourceDateEpoch", source_date_epoch},
      {"platform", to_json(*platform)},
      {"compressor", compressor},
  };
  if (r.contains("environment")) {
    const JsonValue* environment = QR_TRY(get_object(r, "environment", what));
    internal["environment"] = to_json(*environment);
  }
  if (r.contains("sandbox")) internal["sandbox"] = QR_TRY(get_text(r, "sandbox", what));
  std::string run_environment = r.contains("builder_image") ? "image" : "host";  // results older than the field
  if (r.contains("run_environment")) run_environment = QR_TRY(get_text(r, "run_environment", what));
  if (!is_run_environment(run_environment)) {
    return Status::bad_input("build result: \"run_environment\" is \"" + run_environment +
                             "\", not one of image, host, none");
  }
  internal["runEnvironment"] = run_environment;
  Json external = {{"source", uri}, {"commit", commit}, {"recipePath", recipe}};
  // A Containerfile's --build-arg values are inputs the requester chose: external parameters. Recipe results
  // have no build_args, and their statements keep their bytes.
  if (r.contains("build_args")) {
    const JsonValue* args = QR_TRY(get_object(r, "build_args", what));
    BuildArgMap set;
    for (const JsonMember* m : sorted_members(*args)) {
      if (m->name.empty()) return Status::bad_input("build result: build_args: a name is empty");
      if (!m->value.is_string()) {
        return Status::bad_input("build result: build_args: \"" + std::string(m->name) + "\" is not a string");
      }
      set[std::string(m->name)] = std::string(m->value.string());
    }
    QR_RETURN_IF_ERROR(check_build_args(set).with_context("build result"));  // one canonical form (core)
    external["buildArgs"] = to_json(*args);
  }
  return Json{
      {"buildType", kBuildType},
      {"externalParameters", std::move(external)},
      {"internalParameters", std::move(internal)},
      {"resolvedDependencies", std::move(deps)},
  };
}

Result<Json> run_details(const JsonValue& r, const JsonValue& image, std::string_view node_id,
                         std::string_view builder_uri, std::string_view what) {
  Json version = Json::object();
  if (r.contains("toolchain")) {
    const JsonValue* toolchain = QR_TRY(get_object(r, "toolchain", what));
    QR_RETURN_IF_ERROR(flatten_versions(*toolchain, "", version));
  }
  version[std::string(kNodeIdVersionKey)] = std::string(node_id);  // builder.id is a URI; the roster's id is here
  Json byproducts = Json::array();
  auto config = QR_TRY(get_digest(image, "config_digest", "build result: image"));
  byproducts.push_back({{"name", "config"}, {"digest", digest_set(config)}, {"mediaType", kConfigMediaType}});
  const JsonValue* diff_ids = QR_TRY(get_array(image, "diff_ids", "build result: image"));
  for (const auto& [_, d] : diff_ids->items()) {
    if (!d.is_string() || !check_digest(d.string()).ok()) {
      return Status::bad_input("build result: image: a diff_id is not sha256:<64 lowercase hex>");
    }
    byproducts.push_back({{"name", "diff_id"}, {"digest", digest_set(d.string())}});
  }
  if (image.contains("layers")) {
    const JsonValue* layers = QR_TRY(get_array(image, "layers", "build result: image"));
    for (const auto& [_, l] : layers->items()) {
      if (!l.is_object()) return Status::bad_input("build result: image: layers: an entry is not an object");
      auto digest = QR_TRY(get_digest(l, "digest", "build result: image: layers"));
      auto size = QR_TRY(get_int(l, "size", "build result: image: layers"));
      auto media = QR_TRY(get_text(l, "media_type", "build result: image: layers"));
      byproducts.push_back({{"name", "layer"},
                            {"digest", digest_set(digest)},
                            {"mediaType", media},
                            {"annotations", {{"size", std::to_string(size)}}}});
    }
  }
  auto compressor = QR_TRY(get_text(r, "compressor", what));
  // A ResourceDescriptor needs one of uri, digest, content: the compressor's id is the content.
  byproducts.push_back({{"name", "compressor"},
                        {"content", base64_encode(compressor)},
                        {"mediaType", "text/plain"},
                        {"annotations", {{"compressor", compressor}}}});
  auto started = QR_TRY(get_time(r, "started_on", what));
  auto finished = QR_TRY(get_time(r, "finished_on", what));
  return Json{
      {"builder", {{"id", builder_uri}, {"version", std::move(version)}}},
      {"metadata", {{"startedOn", started}, {"finishedOn", finished}}},
      {"byproducts", std::move(byproducts)},
  };
}

}  // namespace

bool is_uri(std::string_view s) {
  // RFC 3986: scheme ":" hier-part; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). No spaces or controls.
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(s[0])) return false;
  for (size_t i = 1; i < colon; ++i) {
    char c = s[i];
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return false;
  }
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' || c == '{' ||
        c == '|' || c == '}') {
      return false;
    }
  }
  return true;
}

std::string percent_encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                c == '_' || c == '~' || c == '/' || c == '+' || c == '@' || c == ',' || c == '=' || c == ':';
    if (keep) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string source_dependency_uri(std::string_view repo) {
  if (repo.starts_with("git+") && is_uri(repo)) return std::string(repo);
  if (repo.find("://") != std::string_view::npos && is_uri(repo)) return "git+" + std::string(repo);
  if (repo.starts_with("/")) return "git+file://" + percent_encode_path(repo);
  // A relative path (or an scp-like host:path) cannot be made absolute here: a relative reference, marked.
  return "git+file:" + percent_encode_path(repo);
}

std::string default_builder_uri(std::string_view node_id) {
  return std::string(kBuilderUriPrefix) + percent_encode_path(node_id);
}

Result<std::string> statement_from_build_result(std::string_view build_result, std::string_view node_id,
                                                std::string_view builder_uri) {
  constexpr std::string_view what = "build result";
  if (node_id.empty()) return Status::bad_input("node id is empty");
  std::string builder = builder_uri.empty() ? default_builder_uri(node_id) : std::string(builder_uri);
  if (!is_uri(builder)) return Status::bad_input("builder id '" + builder + "' is not a URI (scheme:...)");
  auto doc = QR_TRY(detail::parse_strict_json(build_result, what));
  const JsonValue& r = doc.root();
  if (!r.is_object()) return Status::bad_input("build result: not a JSON object");
  auto schema = QR_TRY(get_text(r, "schema", what));
  if (schema != kBuildResultSchema) {
    return Status::bad_input("build result: schema '" + schema + "' is not " + std::string(kBuildResultSchema));
  }
  const JsonValue* image = QR_TRY(get_object(r, "image", what));
  const JsonValue* source = QR_TRY(get_object(r, "source", what));
  auto name = QR_TRY(get_text(*image, "name", "build result: image"));
  auto manifest = QR_TRY(get_digest(*image, "manifest_digest", "build result: image"));
  auto definition = QR_TRY(build_definition(r, *source, what));
  auto details = QR_TRY(run_details(r, *image, node_id, builder, what));
  Json statement = {
      {"_type", kStatementType},
      {"subject", Json::array({{{"name", name}, {"digest", digest_set(manifest)}}})},
      {"predicateType", kProvenanceType},
      {"predicate", {{"buildDefinition", std::move(definition)}, {"runDetails", std::move(details)}}},
  };
  return canonical_json(statement, "build result");
}

// ---- parsing -------------------------------------------------------------------------------------------

namespace {

Result<std::string> get_sha256(const JsonValue& obj, std::string_view what) {
  const JsonValue* digest = QR_TRY(get_object(obj, "digest", what));
  auto hex = QR_TRY(get_string(*digest, "sha256", std::string(what) + ": digest"));
  if (!is_lower_hex(hex, 64)) return Status::bad_input(std::string(what) + ": digest sha256 is not 64 lowercase hex");
  std::string out = "sha256:";
  out += hex;
  return out;
}

Result<int64_t> get_parsed_time(const JsonValue& obj, const char* key, std::string_view what) {
  auto text = QR_TRY(get_string(obj, key, what));
  auto t = parse_rfc3339(text);
  if (!t.ok()) return Status::bad_input(std::string(what) + ": \"" + key + "\": " + t.status().message());
  return *t;
}

// Whether a resolved dependency is marked as the build environment (annotations.role = "builder").
Result<bool> is_builder_dependency(const JsonValue& dep) {
  const JsonValue* annotations = dep.find("annotations");
  if (annotations == nullptr || !annotations->is_object() || !annotations->contains("role")) return false;
  auto role = QR_TRY(get_string(*annotations, "role", "statement: resolvedDependencies: annotations"));
  return role == "builder";
}

Status parse_definition(const JsonValue& def, Statement& s) {
  constexpr std::string_view what = "statement: buildDefinition";
  auto build_type = QR_TRY(get_string(def, "buildType", what));
  if (build_type != kBuildType) {
    return Status::verification("statement: buildType '" + std::string(build_type) + "' is not " +
                                std::string(kBuildType));
  }
  const JsonValue* ext = QR_TRY(get_object(def, "externalParameters", what));
  s.source_uri = QR_TRY(get_string(*ext, "source", "statement: externalParameters"));
  s.commit = QR_TRY(get_string(*ext, "commit", "statement: externalParameters"));
  if (!is_lower_hex(s.commit, 40)) return Status::bad_input("statement: commit is not 40 lowercase hex");
  s.recipe_path = QR_TRY(get_string(*ext, "recipePath", "statement: externalParameters"));
  if (ext->contains("buildArgs")) {
    const JsonValue* args = QR_TRY(get_object(*ext, "buildArgs", "statement: externalParameters"));
    for (const JsonMember* m : sorted_members(*args)) {
      if (m->name.empty()) return Status::bad_input("statement: externalParameters: buildArgs: a name is empty");
      if (!m->value.is_string()) {
        return Status::bad_input("statement: externalParameters: buildArgs: \"" + std::string(m->name) +
                                 "\" is not a string");
      }
      s.build_args[std::string(m->name)] = std::string(m->value.string());
    }
    // The set has a canonical text (core/build_args.h): the subject key's build_args.
    QR_RETURN_IF_ERROR(check_build_args(s.build_args).with_context("statement: externalParameters"));
  }
  const JsonValue* internal = QR_TRY(get_object(def, "internalParameters", what));
  s.canonical_form = QR_TRY(get_int(*internal, "canonicalForm", "statement: internalParameters"));
  s.source_date_epoch = QR_TRY(get_int(*internal, "sourceDateEpoch", "statement: internalParameters"));
  s.compressor = QR_TRY(get_string(*internal, "compressor", "statement: internalParameters"));
  if (internal->contains("runEnvironment")) {
    s.run_environment = QR_TRY(get_string(*internal, "runEnvironment", "statement: internalParameters"));
    if (!is_run_environment(s.run_environment)) {
      return Status::bad_input("statement: internalParameters: runEnvironment \"" + s.run_environment +
                               "\" is not one of image, host, none");
    }
  }
  const JsonValue* deps = QR_TRY(get_array(def, "resolvedDependencies", what));
  for (const auto& [_, dep] : deps->items()) {
    if (!dep.is_object()) return Status::bad_input("statement: resolvedDependencies: an entry is not an object");
    auto name = QR_TRY(get_string(dep, "name", "statement: resolvedDependencies"));
    if (name == "source") continue;
    auto digest = QR_TRY(get_sha256(dep, "statement: resolvedDependencies"));
    if (QR_TRY(is_builder_dependency(dep))) {
      s.builder_image = BaseImage{std::string(name), std::move(digest)};
    } else {
      s.base_images.push_back({std::string(name), std::move(digest)});
    }
  }
  // Statements signed before the field existed: a builder image means its run steps ran there; otherwise
  // they may have run on the host, and are taken to have.
  if (s.run_environment.empty()) s.run_environment = s.builder_image ? "image" : "host";
  return Status::ok_status();
}

Status parse_run_details(const JsonValue& run, Statement& s) {
  constexpr std::string_view what = "statement: runDetails";
  const JsonValue* builder = QR_TRY(get_object(run, "builder", what));
  s.builder_uri = QR_TRY(get_string(*builder, "id", "statement: builder"));
  if (s.builder_uri.empty()) return Status::bad_input("statement: builder id is empty");
  s.builder_id = s.builder_uri;  // statements before builder.id became a URI held the node id there
  if (builder->contains("version")) {
    const JsonValue* version = QR_TRY(get_object(*builder, "version", "statement: builder"));
    if (version->contains("quorate"))
      s.builder_version = QR_TRY(get_string(*version, "quorate", "statement: builder.version"));
    if (version->contains(kNodeIdVersionKey)) {
      s.builder_id = QR_TRY(get_string(*version, kNodeIdVersionKey, "statement: builder.version"));
      if (s.builder_id.empty()) return Status::bad_input("statement: builder.version: the node id is empty");
    }
  }
  const JsonValue* meta = QR_TRY(get_object(run, "metadata", what));
  s.started_on = QR_TRY(get_parsed_time(*meta, "startedOn", "statement: metadata"));
  s.finished_on = QR_TRY(get_parsed_time(*meta, "finishedOn", "statement: metadata"));
  const JsonValue* byproducts = QR_TRY(get_array(run, "byproducts", what));
  for (const auto& [_, b] : byproducts->items()) {
    if (!b.is_object()) return Status::bad_input("statement: byproducts: an entry is not an object");
    auto name = QR_TRY(get_string(b, "name", "statement: byproducts"));
    if (name == "config") s.config_digest = QR_TRY(get_sha256(b, "statement: byproducts: config"));
    if (name == "diff_id") s.diff_ids.push_back(QR_TRY(get_sha256(b, "statement: byproducts: diff_id")));
  }
  if (s.config_digest.empty()) return Status::bad_input("statement: byproducts: no config digest");
  return Status::ok_status();
}

}  // namespace

Result<Statement> parse_statement(std::string_view json) {
  auto doc = QR_TRY(detail::parse_strict_json(json, "statement"));
  const JsonValue& j = doc.root();
  if (!j.is_object()) return Status::bad_input("statement: not a JSON object");
  auto type = QR_TRY(get_string(j, "_type", "statement"));
  if (type != kStatementType)
    return Status::verification("statement: _type '" + std::string(type) + "' is not " + std::string(kStatementType));
  auto predicate_type = QR_TRY(get_string(j, "predicateType", "statement"));
  if (predicate_type != kProvenanceType) {
    return Status::verification("statement: predicateType '" + std::string(predicate_type) + "' is not " +
                                std::string(kProvenanceType));
  }
  Statement s;
  const JsonValue* subjects = QR_TRY(get_array(j, "subject", "statement"));
  if (subjects->size() != 1 || !subjects->items()[0].value.is_object()) {
    return Status::bad_input("statement: subject must hold exactly one image");
  }
  const JsonValue& subject = subjects->items()[0].value;
  s.subject_name = QR_TRY(get_string(subject, "name", "statement: subject"));
  s.image_digest = QR_TRY(get_sha256(subject, "statement: subject"));
  const JsonValue* predicate = QR_TRY(get_object(j, "predicate", "statement"));
  const JsonValue* definition = QR_TRY(get_object(*predicate, "buildDefinition", "statement: predicate"));
  QR_RETURN_IF_ERROR(parse_definition(*definition, s));
  const JsonValue* run = QR_TRY(get_object(*predicate, "runDetails", "statement: predicate"));
  QR_RETURN_IF_ERROR(parse_run_details(*run, s));
  return s;
}

}  // namespace quorate::attest
