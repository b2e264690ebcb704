// The canonical form of a set of build args (see build_args.h).
#include "quorate/core/build_args.h"

#include <nlohmann/json.hpp>

#include <set>

#include "quorate/core/json.h"

namespace quorate {

Result<BuildArgMap> parse_build_arg_flags(const std::vector<std::string>& flags) {
  BuildArgMap out;
  for (const auto& kv : flags) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Status::usage("--build-arg must be NAME=VALUE, not " + kv);
    if (!out.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second) {
      return Status::usage("--build-arg " + kv.substr(0, eq) + " given twice");
    }
  }
  QR_RETURN_IF_ERROR(check_build_args(out).with_context("--build-arg"));
  return out;
}

Status check_build_args(const BuildArgMap& args) {
  for (const auto& [name, value] : args) {
    if (name.empty()) return Status::bad_input("build args: a name is empty");
    if (name.find('=') != std::string::npos) return Status::bad_input("build args: name " + name + " holds '='");
    if (valid_utf8(name) != name) return Status::bad_input("build args: name " + valid_utf8(name) + " is not UTF-8");
    if (valid_utf8(value) != value) return Status::bad_input("build args: the value of " + name + " is not UTF-8");
  }
  return Status();
}

Result<std::string> build_args_text(const BuildArgMap& args) {
  if (args.empty()) return std::string();
  QR_RETURN_IF_ERROR(check_build_args(args));
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : args) j[name] = value;
  return canonical_json(j, "build args");
}

Result<BuildArgMap> parse_build_args_text(std::string_view text) {
  BuildArgMap out;
  if (text.empty()) return out;
  std::set<std::string> seen;
  std::string duplicate;
  auto watch = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && duplicate.empty()) {
      std::string name = parsed.get<std::string>();
      if (!seen.insert(name).second) duplicate = name;
    }
    return true;
  };
  QR_RETURN_IF_ERROR(check_json_depth(text, "build args"));
  nlohmann::json j = nlohmann::json::parse(text, watch, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::bad_input("build args: not JSON: " + valid_utf8(text));
  if (!duplicate.empty()) return Status::bad_input("build args: " + valid_utf8(duplicate) + " given twice");
  if (!j.is_object()) return Status::bad_input("build args: not a JSON object: " + valid_utf8(text));
  for (const auto& [name, value] : j.items()) {
    if (!value.is_string()) return Status::bad_input("build args: the value of " + name + " is not a string");
    out[name] = value.get<std::string>();
  }
  std::string canonical = QR_TRY(build_args_text(out));
  if (canonical != text) {
    return Status::bad_input("build args: not in canonical form (" + (canonical.empty() ? "\"\"" : canonical) +
                             "): " + valid_utf8(text));
  }
  return out;
}

nlohmann::json build_args_json(const std::string& text) {
  auto args = parse_untrusted_json(text);
  return args.is_discarded() ? nlohmann::json(text) : args;
}

std::string describe_build_args(std::string_view text) {
  if (text.empty()) return {};
  return " with build args " + valid_utf8(text);
}

}  // namespace quorate
