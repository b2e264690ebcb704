// Containerfile build args (`--build-arg NAME=VALUE`): the one canonical form of a set of them. The statement's
// externalParameters.buildArgs, the derived request id, the quorum store's key column and the wire's SubjectKey
// all use it, so that one set of build args has one spelling everywhere (docs/canonical-form.md).
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate {

// A set of build args: names sorted by byte order (std::map), one value each, values exact bytes (never
// trimmed, folded or normalized).
using BuildArgMap = std::map<std::string, std::string>;

// `--build-arg` flags, each NAME=VALUE (split at the first '='), into a set: usage naming the flag when one has no
// '=' or an empty name, or when a name is given twice (never "the last one wins").
Result<BuildArgMap> parse_build_arg_flags(const std::vector<std::string>& flags);

// Whether `args` can be written canonically: bad_input naming the arg when a name is empty or holds '=', or a
// name or value is not UTF-8 (canonical JSON carries neither).
Status check_build_args(const BuildArgMap& args);

// The canonical text of a set: "" for the empty set (a recipe build, or a Containerfile build given none), else
// the canonical JSON object of its names and values, e.g. {"A":"1","B":""} (core/json.h: sorted by name, no
// whitespace, UTF-8 as is). Errors as check_build_args.
Result<std::string> build_args_text(const BuildArgMap& args);

// The set a canonical text names; bad_input when `text` is not exactly the canonical text of a set: not a JSON
// object of strings, a name given twice (named), names out of order, whitespace or escapes spelled otherwise,
// "{}" (the empty set is "").
Result<BuildArgMap> parse_build_args_text(std::string_view text);

// For JSON reports: the object a canonical text names (written canonically, it is that text); the text as a
// string when it is not one.
nlohmann::json build_args_json(const std::string& text);

// For messages: "" for the empty set, else " with build args " + the canonical text.
std::string describe_build_args(std::string_view text);

}  // namespace quorate
