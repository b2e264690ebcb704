// mask_control and markdown_cell: one byte at a time, C1 controls recognised by their UTF-8 lead byte.
#include "quorate/core/display.h"

#include <cstdint>

namespace quorate {

std::string mask_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<uint8_t>(text[i]);
    const bool c1 = c == 0xc2 && i + 1 < text.size() && static_cast<uint8_t>(text[i + 1]) <= 0x9f &&
                    static_cast<uint8_t>(text[i + 1]) >= 0x80;
    if (c < 0x20 || c == 0x7f || c1) {
      out += '?';
      if (c1) ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (char c : mask_control(text)) {
    if (c == '\\' || c == '|' || c == '`' || c == '<' || c == '>') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace quorate
