// Strict JSON in, canonical JSON out: the attest module's only JSON rules, shared by DSSE, bundle and statement.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "quorate/attest/dsse.h"
#include "quorate/core/json.h"
#include "quorate/core/status.h"

namespace quorate::attest::detail {

using Json = nlohmann::json;

// Parses `text` as one JSON value: valid UTF-8, no duplicate member names at any depth, nesting at most 64.
// bad_input "<what>: ..." otherwise. Never throws.
Result<Json> parse_strict_json(std::string_view text, std::string_view what);

// Field accessors for parsed documents: bad_input "<what>: <key> ..." when absent or of the wrong type.
Result<std::string> get_string(const Json& obj, const char* key, std::string_view what);
Result<int64_t> get_int(const Json& obj, const char* key, std::string_view what);
Result<const Json*> get_object(const Json& obj, const char* key, std::string_view what);
Result<const Json*> get_array(const Json& obj, const char* key, std::string_view what);
// bad_input naming the first member of `obj` that is not in `allowed`.
Status check_members(const Json& obj, std::initializer_list<std::string_view> allowed, std::string_view what);

// The DSSE envelope as a JSON value, and back (strict: unknown members, strict base64, at least one signature).
Json envelope_json(const Envelope& e);
Result<Envelope> envelope_from_json(const Json& j, std::string_view what);

}  // namespace quorate::attest::detail
