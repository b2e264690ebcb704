// Reading TOML configuration: parse errors and value errors name file:line, unknown keys are refused, typed
// getters with ranges and defaults, relative paths resolved against the file's directory.
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::config {

// How deep a TOML file's keys may nest: the parts of a dotted key, of its [table] or [[array]] header, and
// the arrays and inline tables around it, counted together. Real files stay under 10. toml++ limits nested
// arrays and inline tables but not dotted keys, and recurses once per part: 60,000 parts overflowed the stack.
inline constexpr size_t kMaxTomlDepth = 64;

// bad_input "<name>:<line>: keys nested deeper than 64 levels (…)" when a key of `text` nests deeper than
// kMaxTomlDepth; OK otherwise, whether or not `text` is TOML (where it stops being TOML, toml++ stops too).
// Strings and comments are skipped as TOML reads them. One pass; parse_toml calls it first.
Status check_toml_depth(std::string_view text, const std::string& name);

// Parses TOML text; bad_input "<name>:<line>: <toml++'s description>" when it is not TOML, or the message of
// check_toml_depth. `name` is what messages call the text (a file name).
Result<toml::table> parse_toml(std::string_view text, const std::string& name);

// One parsed TOML file and the checks every configuration file gets. Each getter takes the table a key is
// in and the dotted prefix messages name it by ("" at the top, "network." in [network]); all errors are
// bad_input naming the file and, where the value exists, its line. Immutable once read; thread-compatible.
class TomlFile {
 public:
  // Reads `path` (at most 1 MiB) and parses it with parse_toml; bad_input "<path>:<line>: …" when it is not
  // TOML or nests too deep, the error of read_file when it cannot be read.
  static Result<TomlFile> read(const std::filesystem::path& path);

  const toml::table& root() const { return root_; }
  const std::filesystem::path& path() const { return path_; }
  // The absolute directory holding the file: relative paths in it are relative to this.
  const std::filesystem::path& base_dir() const { return base_; }

  // "<path>:<line>" of a value.
  std::string where(const toml::node& n) const;
  // Refuses ("unknown key '<section><key>'") any key of `t` not in `allowed`.
  Status check_keys(const toml::table& t, const std::string& section, const std::set<std::string>& allowed) const;

  // The table under `key`, nullptr when absent; "'<key>' must be a table" when it is something else.
  Result<const toml::table*> table(const toml::table& t, const char* key) const;
  // A string; when absent, `fallback`, or "missing required key" when required.
  Result<std::string> string(const toml::table& t, const char* key, const std::string& section, bool required,
                             std::string fallback = {}) const;
  // An integer in [min, max]; `fallback` when absent.
  Result<int64_t> integer(const toml::table& t, const char* key, const std::string& section, int64_t fallback,
                          int64_t min, int64_t max) const;
  Result<bool> boolean(const toml::table& t, const char* key, const std::string& section, bool fallback) const;
  // An array of strings; empty when absent.
  Result<std::vector<std::string>> strings(const toml::table& t, const char* key, const std::string& section) const;
  // A path string resolved against base_dir() when relative; empty stays empty.
  std::filesystem::path resolve(const std::string& p) const;

 private:
  TomlFile(std::filesystem::path path, toml::table root);
  std::filesystem::path path_;
  std::filesystem::path base_;
  toml::table root_;
};

}  // namespace quorate::config
