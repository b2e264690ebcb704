// Canonical JSON (see json.h).
#include "quorate/core/json.h"

namespace quorate {

Result<std::string> canonical_json(const nlohmann::json& value, std::string_view what) {
  try {
    return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    return Status::bad_input(std::string(what) + ": cannot be written as canonical JSON: " + e.what());
  }
}

std::string valid_utf8(std::string_view text) {
  std::string quoted = nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

std::string display_json(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

Status check_json_depth(std::string_view text, std::string_view what) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return Status::bad_input(std::string(what) + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                                 " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Status();
}

nlohmann::json parse_untrusted_json(std::string_view text) {
  if (!check_json_depth(text, "").ok()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace quorate
