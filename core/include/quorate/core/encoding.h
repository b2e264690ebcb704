// Hex and base64 encodings (standard alphabet, padded), strict on decode.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate {

std::string hex_encode(std::span<const uint8_t> bytes);
std::string hex_encode(std::string_view bytes);
// Lower- or upper-case hex; bad_input on odd length or a non-hex character.
Result<std::string> hex_decode(std::string_view hex);
bool is_lower_hex(std::string_view s, size_t length);

std::string base64_encode(std::string_view bytes);
// Standard alphabet with padding; bad_input on anything else (whitespace included).
Result<std::string> base64_decode(std::string_view b64);

// True when `s` is well-formed UTF-8.
bool is_utf8(std::string_view s);

}  // namespace quorate
