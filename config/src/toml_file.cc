// TomlFile: the checks and typed getters every quorate configuration file is read with.
#include "quorate/config/toml_file.h"

#include "quorate/core/file.h"

namespace quorate::config {

Result<toml::table> parse_toml(std::string_view text, const std::string& name) {
  QR_RETURN_IF_ERROR(check_toml_depth(text, name));
  try {
    return toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    return Status::bad_input(name + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
}

TomlFile::TomlFile(std::filesystem::path path, toml::table root)
    : path_(std::move(path)), base_(std::filesystem::absolute(path_).parent_path()), root_(std::move(root)) {}

Result<TomlFile> TomlFile::read(const std::filesystem::path& path) {
  constexpr uint64_t kMaxBytes = 1 << 20;
  const std::string text = QR_TRY(read_file(path, kMaxBytes));
  toml::table root = QR_TRY(parse_toml(text, path.string()));
  return TomlFile(path, std::move(root));
}

std::string TomlFile::where(const toml::node& n) const {
  return path_.string() + ":" + std::to_string(n.source().begin.line);
}

Status TomlFile::check_keys(const toml::table& t, const std::string& section,
                            const std::set<std::string>& allowed) const {
  for (const auto& [k, v] : t) {
    if (!allowed.count(std::string(k.str()))) {
      return Status::bad_input(where(v) + ": unknown key '" + section + std::string(k.str()) + "'");
    }
  }
  return Status();
}

Result<const toml::table*> TomlFile::table(const toml::table& t, const char* key) const {
  const toml::node* n = t.get(key);
  if (!n) return static_cast<const toml::table*>(nullptr);
  if (!n->is_table()) return Status::bad_input(where(*n) + ": '" + key + "' must be a table");
  return n->as_table();
}

Result<std::string> TomlFile::string(const toml::table& t, const char* key, const std::string& section, bool required,
                                     std::string fallback) const {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return Status::bad_input(path_.string() + ": missing required key '" + section + key + "'");
    return fallback;
  }
  if (!n->is_string()) return Status::bad_input(where(*n) + ": '" + section + key + "' must be a string");
  return std::string(n->as_string()->get());
}

Result<int64_t> TomlFile::integer(const toml::table& t, const char* key, const std::string& section, int64_t fallback,
                                  int64_t min, int64_t max) const {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  if (!n->is_integer()) return Status::bad_input(where(*n) + ": '" + section + key + "' must be an integer");
  int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    return Status::bad_input(where(*n) + ": '" + section + key + "' must be in [" + std::to_string(min) + ", " +
                             std::to_string(max) + "]");
  }
  return v;
}

Result<bool> TomlFile::boolean(const toml::table& t, const char* key, const std::string& section, bool fallback) const {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  if (!n->is_boolean()) return Status::bad_input(where(*n) + ": '" + section + key + "' must be true or false");
  return n->as_boolean()->get();
}

Result<std::vector<std::string>> TomlFile::strings(const toml::table& t, const char* key,
                                                   const std::string& section) const {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) return Status::bad_input(where(*n) + ": '" + section + key + "' must be an array of strings");
  for (const auto& e : *a) {
    if (!e.is_string()) return Status::bad_input(where(e) + ": '" + section + key + "' must hold strings");
    out.emplace_back(e.as_string()->get());
  }
  return out;
}

std::filesystem::path TomlFile::resolve(const std::string& p) const {
  if (p.empty()) return {};
  std::filesystem::path path(p);
  return path.is_relative() ? base_ / path : path;
}

}  // namespace quorate::config
