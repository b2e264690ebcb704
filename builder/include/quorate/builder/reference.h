// Image references (`example.org/team/app:1.2`, `NAME@sha256:HEX`): the OCI distribution grammar, checked in
// this one place for recipes, `quorate build --image-name` and a node's BuildRequest.image_name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate::builder {

// A repository name: [domain[:port]/]path-component(/path-component)*, where a path component is lowercase
// alphanumerics joined by one of ".", "_", "__" or any number of "-"; at most 255 bytes. bad_input
// "`field` …" saying what is wrong (a control byte, an uppercase letter, an empty component…); the value is
// quoted with control bytes escaped, so a message never carries a raw newline or NUL.
Status check_image_name(std::string_view name, std::string_view field);

// A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}. bad_input "`field` …" like check_image_name.
Status check_image_tag(std::string_view tag, std::string_view field);

struct ImageReference {
  std::string name;    // the repository name
  std::string tag;     // empty when absent
  std::string digest;  // "sha256:<64 hex>", empty when absent
};

// NAME[:TAG][@sha256:HEX], each part checked as above. bad_input "`field` …".
Result<ImageReference> parse_image_reference(std::string_view reference, std::string_view field);

// `text` in double quotes with control bytes, quotes and backslashes escaped (\n, \x00…): for messages.
std::string quote_for_message(std::string_view text);

}  // namespace quorate::builder
