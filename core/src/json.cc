// Canonical JSON (see json.h).
#include "quorate/core/json.h"

#include <cstdint>

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
  return escape_display_controls(
      value.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace));
}

std::string escape_display_controls(std::string_view text) {
  // nlohmann escapes C0 only; DEL and the C1 controls (0xC2 0x80..0x9F: only ever inside a string, and 0xC2 is a
  // lead byte there since the text is valid UTF-8) are written as \u escapes: the same value, nothing a
  // terminal obeys.
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    const auto next = i + 1 < text.size() ? static_cast<uint8_t>(text[i + 1]) : 0;
    if (c == 0x7f) {
      out += "\\u007f";
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      out += "\\u00";
      out += kHex[next >> 4];
      out += kHex[next & 0xf];
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
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
