// Recipe parsing: every key checked against docs/recipe.md; errors say file, line and key.
#include "quorate/builder/recipe.h"

#include <fnmatch.h>

#include <algorithm>
#include <set>

#include "quorate/builder/reference.h"
#include "quorate/config/toml_file.h"
#include "quorate/core/sha256.h"

namespace quorate::builder {
namespace {

// Reads keys of one table, remembering which were seen so the rest can be refused as unknown.
class TableReader {
 public:
  TableReader(const std::string& file, const toml::table& table, std::string section)
      : file_(file), table_(table), section_(std::move(section)) {}

  Status fail(const toml::node* n, const std::string& key, const std::string& what) const {
    int line = n ? static_cast<int>(n->source().begin.line) : static_cast<int>(table_.source().begin.line);
    return Status::bad_input(file_ + ":" + std::to_string(line) + ": '" + section_ + key + "' " + what);
  }

  const toml::node* get(const std::string& key) {
    seen_.insert(key);
    return table_.get(key);
  }

  Result<std::optional<std::string>> opt_string(const std::string& key) {
    const toml::node* n = get(key);
    if (!n) return std::optional<std::string>();
    if (!n->is_string()) return fail(n, key, "must be a string");
    return std::optional<std::string>(std::string(n->as_string()->get()));
  }
  Result<std::string> string(const std::string& key, std::string fallback) {
    auto v = QR_TRY(opt_string(key));
    return v ? *v : fallback;
  }
  Result<std::string> required_string(const std::string& key) {
    if (!table_.get(key)) return fail(nullptr, key, "is required but missing");
    auto v = QR_TRY(opt_string(key));
    if (v->empty()) return fail(get(key), key, "must not be empty");
    return *v;
  }
  Result<std::optional<int64_t>> opt_int(const std::string& key) {
    const toml::node* n = get(key);
    if (!n) return std::optional<int64_t>();
    if (!n->is_integer()) return fail(n, key, "must be an integer");
    return std::optional<int64_t>(n->as_integer()->get());
  }
  Result<std::optional<std::vector<std::string>>> opt_strings(const std::string& key) {
    const toml::node* n = get(key);
    if (!n) return std::optional<std::vector<std::string>>();
    const toml::array* a = n->as_array();
    if (!a) return fail(n, key, "must be an array of strings");
    std::vector<std::string> out;
    for (const auto& e : *a) {
      if (!e.is_string()) return fail(&e, key, "must hold only strings");
      out.emplace_back(e.as_string()->get());
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }
  Result<std::map<std::string, std::string>> string_map(const std::string& key) {
    std::map<std::string, std::string> out;
    const toml::node* n = get(key);
    if (!n) return out;
    const toml::table* t = n->as_table();
    if (!t) return fail(n, key, "must be a table of strings");
    for (const auto& [k, v] : *t) {
      if (!v.is_string()) return fail(&v, key + "." + std::string(k.str()), "must be a string");
      out.emplace(std::string(k.str()), std::string(v.as_string()->get()));
    }
    return out;
  }
  const toml::table* opt_table(const std::string& key, Status& error) {
    const toml::node* n = get(key);
    if (!n) return nullptr;
    if (!n->is_table()) error = fail(n, key, "must be a table");
    return n->as_table();
  }
  // Every key not read so far is unknown: a typo must not be silently ignored.
  Status check_unknown() const {
    for (const auto& [k, v] : table_) {
      std::string key(k.str());
      if (!seen_.count(key)) return fail(&v, key, "is not a known key (see docs/recipe.md)");
    }
    return Status();
  }
  int line() const { return static_cast<int>(table_.source().begin.line); }
  const std::string& section() const { return section_; }

 private:
  const std::string& file_;
  const toml::table& table_;
  std::string section_;
  std::set<std::string> seen_;
};

bool valid_env_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

Status check_env(TableReader& r, const std::string& key, const std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : env) {
    if (!valid_env_name(name)) return r.fail(r.get(key), key, "has an invalid variable name \"" + name + "\"");
    if (value.find('\0') != std::string::npos) return r.fail(r.get(key), key + "." + name, "contains a NUL byte");
  }
  return Status();
}

Result<std::optional<uint32_t>> read_mode(TableReader& r) {
  const toml::node* n = r.get("mode");
  if (!n) return std::optional<uint32_t>();
  int64_t v = -1;
  if (n->is_integer()) {
    v = n->as_integer()->get();
  } else if (n->is_string()) {
    const std::string& s = n->as_string()->get();
    if (!s.empty() && s.size() <= 5 && s.find_first_not_of("01234567") == std::string::npos)
      v = std::stol(s, nullptr, 8);
  } else {
    return r.fail(n, "mode", "must be an octal string like \"0644\" or an integer like 0o644");
  }
  if (v < 0 || v > 07777) return r.fail(n, "mode", "must be a permission mode between 0 and 07777 (octal)");
  return std::optional<uint32_t>(static_cast<uint32_t>(v));
}

Result<uint32_t> parse_id(TableReader& r, const toml::node* n, const std::string& text) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos) {
    return r.fail(n, "owner", "must be numeric \"uid:gid\" (names are not resolved, for determinism)");
  }
  uint64_t v = std::stoull(text);
  if (v > 0xfffffffeu) return r.fail(n, "owner", "has an id out of range");
  return static_cast<uint32_t>(v);
}

Status read_owner(TableReader& r, Step& step) {
  auto owner = QR_TRY(r.opt_string("owner"));
  if (!owner) return Status();
  const toml::node* n = r.get("owner");
  auto colon = owner->find(':');
  step.uid = QR_TRY(parse_id(r, n, owner->substr(0, colon)));
  step.gid = colon == std::string::npos ? step.uid : QR_TRY(parse_id(r, n, owner->substr(colon + 1)));
  return Status();
}

// A relative path inside the tree: no leading '/', no "..".
bool clean_relative(const std::string& p) {
  if (!p.empty() && p.front() == '/') return false;
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t slash = p.find('/', pos);
    if (slash == std::string::npos) slash = p.size();
    if (p.compare(pos, slash - pos, "..") == 0 && slash - pos == 2) return false;
    pos = slash + 1;
  }
  return true;
}

Result<Step> read_step(TableReader& r) {
  Step step;
  step.line = r.line();
  bool has_copy = r.get("copy") != nullptr;
  bool has_run = r.get("run") != nullptr;
  if (has_copy == has_run) return r.fail(nullptr, "copy", "or 'run' is required, exactly one of them");
  if (has_copy) {
    step.kind = Step::Kind::kCopy;
    const toml::node* n = r.get("copy");
    if (n->is_string()) {
      step.patterns.emplace_back(n->as_string()->get());
    } else {
      step.patterns = QR_TRY(r.opt_strings("copy")).value();
    }
    if (step.patterns.empty()) return r.fail(n, "copy", "must name at least one path or pattern");
    for (const auto& p : step.patterns) {
      if (p.empty() || !clean_relative(p))
        return r.fail(n, "copy", "pattern \"" + p + "\" must be a relative path without \"..\"");
    }
    step.from = QR_TRY(r.string("from", ""));
    if (!clean_relative(step.from)) return r.fail(r.get("from"), "from", "must be a relative path without \"..\"");
    while (!step.from.empty() && step.from.back() == '/') step.from.pop_back();
  } else {
    step.kind = Step::Kind::kRun;
    const toml::node* n = r.get("run");
    if (n->is_string()) {
      step.argv = {"/bin/sh", "-c", std::string(n->as_string()->get())};
    } else if (n->is_array()) {
      step.argv = QR_TRY(r.opt_strings("run")).value();
    } else {
      return r.fail(n, "run", "must be a string (run by /bin/sh -c) or an array of strings (argv)");
    }
    if (step.argv.empty() || step.argv[0].empty()) return r.fail(n, "run", "must not be empty");
    step.env = QR_TRY(r.string_map("env"));
    QR_RETURN_IF_ERROR(check_env(r, "env", step.env));
    step.workdir = QR_TRY(r.string("workdir", ""));
    if (!clean_relative(step.workdir))
      return r.fail(r.get("workdir"), "workdir", "must be a relative path inside the tree");
  }
  step.to = QR_TRY(r.string("to", "/"));
  if (step.to.empty() || step.to.front() != '/')
    return r.fail(r.get("to"), "to", "must be an absolute path in the image");
  if (!clean_relative(step.to.substr(1))) return r.fail(r.get("to"), "to", "must not contain \"..\"");
  step.mode = QR_TRY(read_mode(r));
  QR_RETURN_IF_ERROR(read_owner(r, step));
  QR_RETURN_IF_ERROR(r.check_unknown());
  return step;
}

Status read_image(TableReader& r, Recipe& recipe) {
  recipe.name = QR_TRY(r.required_string("name"));
  if (Status s = check_image_name(recipe.name, "the name"); !s.ok())
    return r.fail(r.get("name"), "name", "is invalid: " + s.message());
  recipe.tag = QR_TRY(r.string("tag", recipe.tag));
  if (Status s = check_image_tag(recipe.tag, "the tag"); !s.ok())
    return r.fail(r.get("tag"), "tag", "is invalid: " + s.message());
  recipe.os = QR_TRY(r.string("os", recipe.os));
  recipe.architecture = QR_TRY(r.string("architecture", recipe.architecture));
  recipe.variant = QR_TRY(r.string("variant", ""));
  recipe.source = QR_TRY(r.string("source", ""));
  recipe.compression = QR_TRY(r.string("compression", recipe.compression));
  if (recipe.compression != "gzip" && recipe.compression != "zstd" && recipe.compression != "none") {
    return r.fail(r.get("compression"), "compression", "must be \"gzip\", \"zstd\" or \"none\"");
  }
  auto level = QR_TRY(r.opt_int("compression_level"));
  if (level) {
    if (*level < 1 || *level > 19) return r.fail(r.get("compression_level"), "compression_level", "must be in [1, 19]");
    recipe.compression_level = static_cast<int>(*level);
  }
  return r.check_unknown();
}

Status read_base(TableReader& r, Recipe& recipe) {
  BaseImage base;
  if (auto image = QR_TRY(r.opt_string("image"))) {  // the image store's, pinned: no name/digest/layout keys
    auto ref = parse_image_reference(*image, "the reference");
    if (!ref.ok()) return r.fail(r.get("image"), "image", "is invalid: " + ref.status().message());
    if (ref->digest.empty())
      return r.fail(r.get("image"), "image", "must pin the base image by digest (\"NAME@sha256:HEX\")");
    for (const char* key : {"name", "digest", "layout"}) {
      if (r.get(key))
        return r.fail(r.get(key), key, "cannot be used with 'base.image' (which names and pins the base)");
    }
    base.name = ref->name;
    base.digest = ref->digest;
    base.from_store = true;
    recipe.base = std::move(base);
    return r.check_unknown();
  }
  base.name = QR_TRY(r.required_string("name"));
  if (auto ref = parse_image_reference(base.name, "the reference"); !ref.ok()) {
    return r.fail(r.get("name"), "name", "is invalid: " + ref.status().message());
  }
  base.digest = QR_TRY(r.required_string("digest"));
  if (!check_digest(base.digest).ok())
    return r.fail(r.get("digest"), "digest", "must be \"sha256:\" and 64 lowercase hex digits");
  base.layout = QR_TRY(r.string("layout", ""));
  recipe.base = std::move(base);
  return r.check_unknown();
}

Status read_build(TableReader& r, Recipe& recipe) {
  recipe.build_env = QR_TRY(r.string_map("env"));
  QR_RETURN_IF_ERROR(check_env(r, "env", recipe.build_env));
  recipe.build_path = QR_TRY(r.string("path", ""));
  if (auto image = QR_TRY(r.opt_string("image"))) {
    auto ref = parse_image_reference(*image, "the reference");
    if (!ref.ok()) return r.fail(r.get("image"), "image", "is invalid: " + ref.status().message());
    if (ref->digest.empty()) {
      return r.fail(r.get("image"), "image",
                    "must pin the builder image by digest (\"NAME@sha256:HEX\"): a tag alone can change under you");
    }
    recipe.build_image = BuilderImage{*image, ref->name, ref->digest};
  }
  recipe.tools = QR_TRY(r.opt_strings("tools")).value_or(std::vector<std::string>());
  // A tool runs as `TOOL --version` through /bin/sh and is named in messages: a program name or path, nothing a
  // shell or a terminal would read as more (no `;`, `$(`, quotes, spaces or control characters).
  for (size_t i = 0; i < recipe.tools.size(); ++i) {
    const std::string& tool = recipe.tools[i];
    bool plain = !tool.empty() && std::all_of(tool.begin(), tool.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == '+' || c == '-' || c == '/';
    });
    if (!plain) {
      return r.fail(r.get("tools"), "tools",
                    "entry " + std::to_string(i + 1) + " must be a program name or path (letters, digits, . _ + - /)");
    }
  }
  return r.check_unknown();
}

Status read_config(TableReader& r, Recipe& recipe) {
  ImageConfig& c = recipe.config;
  c.entrypoint = QR_TRY(r.opt_strings("entrypoint"));
  c.cmd = QR_TRY(r.opt_strings("cmd"));
  c.env = QR_TRY(r.string_map("env"));
  QR_RETURN_IF_ERROR(check_env(r, "env", c.env));
  c.workdir = QR_TRY(r.opt_string("workdir"));
  if (c.workdir && (c.workdir->empty() || c.workdir->front() != '/')) {
    return r.fail(r.get("workdir"), "workdir", "must be an absolute path");
  }
  c.user = QR_TRY(r.opt_string("user"));
  c.labels = QR_TRY(r.string_map("labels"));
  c.stop_signal = QR_TRY(r.opt_string("stop_signal"));
  for (auto port : QR_TRY(r.opt_strings("exposed_ports")).value_or(std::vector<std::string>())) {
    auto slash = port.find('/');
    std::string number = port.substr(0, slash);
    std::string proto = slash == std::string::npos ? "tcp" : port.substr(slash + 1);
    bool digits = !number.empty() && number.size() <= 5 && number.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(number) < 1 || std::stoi(number) > 65535 ||
        (proto != "tcp" && proto != "udp" && proto != "sctp")) {
      return r.fail(r.get("exposed_ports"), "exposed_ports",
                    "entry \"" + port + "\" must be PORT or PORT/tcp|udp|sctp");
    }
    c.exposed_ports.push_back(number + "/" + proto);
  }
  return r.check_unknown();
}

// "**" matches zero or more whole segments, any other pattern segment one segment (fnmatch). Greedy, going
// back only to the last "**" seen (as for '*' in a plain wildcard match): at most pattern × path segment
// matches. Trying every split for every "**" was exponential: 14 "**/" in a .dockerignore line took seconds,
// 20 would take hours.
bool match_segments(const std::vector<std::string_view>& pat, const std::vector<std::string_view>& path) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t pi = 0, si = 0;
  size_t star = kNone, star_si = 0;  // the last "**" and the path segment it was tried from
  std::string p, s;
  while (si < path.size()) {
    if (pi < pat.size() && pat[pi] == "**") {
      star = pi++;
      star_si = si;
      continue;
    }
    if (pi < pat.size()) {
      p.assign(pat[pi]);
      s.assign(path[si]);
      if (fnmatch(p.c_str(), s.c_str(), 0) == 0) {
        ++pi;
        ++si;
        continue;
      }
    }
    if (star == kNone) return false;
    pi = star + 1;  // the "**" takes one more segment
    si = ++star_si;
  }
  while (pi < pat.size() && pat[pi] == "**") ++pi;
  return pi == pat.size();
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t slash = s.find('/', pos);
    if (slash == std::string_view::npos) slash = s.size();
    if (slash > pos && s.substr(pos, slash - pos) != ".") out.push_back(s.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

Result<Recipe> read_root(const toml::table& root, const std::string& file) {
  Recipe recipe;
  recipe.path = file;
  TableReader r(file, root, "");
  Status error;
  const toml::table* image = r.opt_table("image", error);
  QR_RETURN_IF_ERROR(error);
  if (!image) return Status::bad_input(file + ":1: '[image]' is required but missing (it holds the image name)");
  TableReader ir(file, *image, "image.");
  QR_RETURN_IF_ERROR(read_image(ir, recipe));
  if (const toml::table* base = r.opt_table("base", error)) {
    TableReader br(file, *base, "base.");
    QR_RETURN_IF_ERROR(read_base(br, recipe));
  }
  QR_RETURN_IF_ERROR(error);
  if (const toml::table* build = r.opt_table("build", error)) {
    TableReader br(file, *build, "build.");
    QR_RETURN_IF_ERROR(read_build(br, recipe));
  }
  QR_RETURN_IF_ERROR(error);
  if (const toml::table* config = r.opt_table("config", error)) {
    TableReader cr(file, *config, "config.");
    QR_RETURN_IF_ERROR(read_config(cr, recipe));
  }
  QR_RETURN_IF_ERROR(error);
  const toml::node* steps = r.get("steps");
  if (!steps) return Status::bad_input(file + ":1: '[[steps]]' is required but missing (at least one step)");
  const toml::array* a = steps->as_array();
  if (!a || a->empty()) return r.fail(steps, "steps", "must be a non-empty array of tables ([[steps]])");
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::table* t = (*a)[i].as_table();
    if (!t) return r.fail(&(*a)[i], "steps", "must hold tables ([[steps]])");
    TableReader sr(file, *t, "steps[" + std::to_string(i) + "].");
    recipe.steps.push_back(QR_TRY(read_step(sr)));
  }
  QR_RETURN_IF_ERROR(r.check_unknown());
  return recipe;
}

}  // namespace

std::string Step::describe() const {
  std::string out;
  auto join = [&](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  };
  if (kind == Kind::kCopy) {
    out = "quorate copy " + join(patterns);
    if (!from.empty()) out += " from " + from;
  } else {
    out = "quorate run " + join(argv);
  }
  return out + " -> " + to;
}

Result<Recipe> parse_recipe(std::string_view text, const std::string& file) {
  constexpr size_t kMaxBytes = 1 << 20;
  if (text.size() > kMaxBytes) {
    return Status::bad_input(file + ": " + std::to_string(text.size()) + " bytes; a recipe may have at most " +
                             std::to_string(kMaxBytes));
  }
  toml::table root = QR_TRY(config::parse_toml(text, file));
  return read_root(root, file);
}

bool glob_match(std::string_view pattern, std::string_view path) { return match_segments(split(pattern), split(path)); }

}  // namespace quorate::builder
