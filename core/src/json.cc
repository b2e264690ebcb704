// Canonical JSON (see json.h).
#include "quorate/core/json.h"

#include <cstdint>

#include "quorate/core/display.h"

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

namespace {

// The code point of the two- or three-byte UTF-8 sequence at text[i] (the text is valid UTF-8), and its length;
// 0 for any other byte.
size_t two_or_three_byte_sequence(std::string_view text, size_t i, uint32_t& code) {
  const auto at = [&](size_t k) { return k < text.size() ? static_cast<uint8_t>(text[k]) : 0u; };
  if (at(i) >= 0xc2 && at(i) <= 0xdf) {
    code = ((at(i) & 0x1fu) << 6) | (at(i + 1) & 0x3fu);
    return 2;
  }
  if (at(i) >= 0xe0 && at(i) <= 0xef) {
    code = ((at(i) & 0x0fu) << 12) | ((at(i + 1) & 0x3fu) << 6) | (at(i + 2) & 0x3fu);
    return 3;
  }
  return 0;
}

}  // namespace

std::string escape_display_controls(std::string_view text) {
  // nlohmann escapes C0 only; DEL, the C1 controls and the bidi controls (only ever inside a string, and whole
  // sequences there, since the text is valid UTF-8) are written as \u escapes: the same value, nothing a
  // terminal obeys or a viewer reorders the line by.
  std::string out;
  out.reserve(text.size());
  static constexpr char kHex[] = "0123456789abcdef";
  const auto escape = [&](uint32_t code) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(code >> shift) & 0xf];
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    uint32_t code = 0;
    const size_t length = two_or_three_byte_sequence(text, i, code);
    if (c == 0x7f) {
      escape(c);
    } else if (length > 0 && ((code >= 0x80 && code <= 0x9f) || is_bidi_control(code))) {
      escape(code);
      i += length - 1;
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
