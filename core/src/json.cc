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

}  // namespace quorate
