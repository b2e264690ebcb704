// Canonical JSON: the one definition of the bytes every hashed, signed or stored JSON document is written as.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate {

// Object members sorted by byte order (nlohmann's default object type is a std::map), no insignificant
// whitespace, non-ASCII characters as UTF-8 (never \u escapes), integers as integers. A string that is not
// valid UTF-8 is bad_input naming `what`: bytes that are hashed or signed are never silently repaired, and
// the same value always gives the same bytes or the same error (docs/canonical-form.md).
Result<std::string> canonical_json(const nlohmann::json& value, std::string_view what);

// `text` with every byte sequence that is not UTF-8 replaced by U+FFFD: for text that comes from a process
// (a tool's --version line) and goes into a document that is then written canonically.
std::string valid_utf8(std::string_view text);

// JSON for people to read (CLI output, never hashed or signed): indented by `indent` (-1: one line), invalid
// UTF-8 shown as U+FFFD so that a hostile byte in a stored reason cannot stop a listing, and DEL, the C1
// controls and the bidi controls escaped (\u007f, \u0080..\u009f, \u202e…) like C0, so that none reaches a
// terminal raw.
std::string display_json(const nlohmann::json& value, int indent = 2);
// The second half of display_json, for JSON text written another way (an ordered_json log line): `json_text`,
// valid UTF-8 as dump() with error_handler_t::replace writes it, with DEL, the C1 and the bidi controls escaped.
std::string escape_display_controls(std::string_view json_text);

// How deep arrays and objects may nest in JSON that comes from outside (the attestation parser's bound too).
// nlohmann's parser is iterative, but copying, comparing and printing a value recurse: 8 MB of '[' parsed
// and then overflowed the stack of image import, normalize and diff.
inline constexpr int kMaxJsonDepth = 64;

// bad_input "WHAT: JSON nested deeper than 64 levels" when `text`'s arrays and objects nest deeper than
// kMaxJsonDepth (brackets inside strings do not count); OK otherwise, whether or not `text` is JSON. One pass,
// no allocation: call it before nlohmann::json::parse on anything read from a file, a peer or a client.
Status check_json_depth(std::string_view text, std::string_view what);

// nlohmann::json::parse(text) without exceptions for text from outside: a discarded value when it is not JSON
// or nests deeper than kMaxJsonDepth.
nlohmann::json parse_untrusted_json(std::string_view text);

}  // namespace quorate
