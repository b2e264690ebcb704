// mask_control and markdown_cell: one UTF-8 sequence at a time; what is not a whole sequence is masked.
#include "quorate/core/display.h"

#include <cstdint>

namespace quorate {

namespace {

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong form, no surrogate, nothing past
// U+10FFFF) starting at text[i], or 0 when the bytes there are not one. Sets `code` to its code point.
size_t utf8_sequence(std::string_view text, size_t i, uint32_t& code) {
  const auto at = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = at(i);
  size_t length = 0;
  uint32_t min = 0;
  if (lead < 0x80) {
    code = lead;
    return 1;
  } else if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, min = 0x80, code = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, min = 0x800, code = lead & 0x0f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, min = 0x10000, code = lead & 0x07;
  } else {
    return 0;  // a continuation byte alone, 0xC0, 0xC1 (overlong) or 0xF5..0xFF
  }
  if (text.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((at(i + k) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (at(i + k) & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

}  // namespace

// Unicode's bidirectional formatting characters (UAX #9): embeddings, overrides and isolates, and the implicit
// marks. A name holding U+202E shows the rest of its line reversed ("evil\u202Etxt.exe" reads "evilexe.txt"),
// so a report could show another path or digest than the one it names.
bool is_bidi_control(uint32_t code) {
  return code == 0x061c || code == 0x200e || code == 0x200f || (code >= 0x202a && code <= 0x202e) ||
         (code >= 0x2066 && code <= 0x2069);
}

std::string mask_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    uint32_t code = 0;
    const size_t length = utf8_sequence(text, i, code);
    if (length == 0) {
      out += '?';  // one byte that is not UTF-8: an 8-bit terminal may obey 0x9B as CSI
      ++i;
    } else if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || is_bidi_control(code)) {
      out += '?';  // C0, DEL, C1, and the marks that reorder how a line reads
      i += length;
    } else {
      out.append(text.substr(i, length));
      i += length;
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
