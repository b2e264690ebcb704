// Text from outside (a Git repository, a tree, a store) shown to people: the one rule every report and
// message masks it by, so that a hostile name or commit message cannot drive the reader's terminal.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace quorate {

// `text` with each control character replaced by '?': the C0 controls (newline, ESC, BEL…), DEL, and the C1
// controls U+0080..U+009F written as UTF-8 (which some terminals obey as CSI…); and each byte that is not part
// of a well-formed UTF-8 sequence (RFC 3629) replaced by '?' too, since a terminal in an 8-bit mode obeys a
// lone 0x9B as CSI; and Unicode's bidirectional formatting characters (U+202E shows the rest of its line
// reversed, so a path could read as another). Well-formed UTF-8 other than these is unchanged.
std::string mask_control(std::string_view text);

// Unicode's bidirectional formatting characters (UAX #9): U+061C, U+200E, U+200F, U+202A..U+202E and
// U+2066..U+2069, which mask_control masks and display_json escapes.
bool is_bidi_control(uint32_t code);

// One cell of a Markdown (GFM) table row: mask_control(text) with '\', '|', '`', '<' and '>' backslash-escaped,
// so that the cell stays one cell on one line and opens no code span or HTML tag.
std::string markdown_cell(std::string_view text);

}  // namespace quorate
