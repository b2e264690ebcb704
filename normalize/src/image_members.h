// Reading the JSON members of an image (index.json, manifest.json, configs, manifests), shared by the readers.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "quorate/core/status.h"
#include "quorate/normalize/image_files.h"

namespace quorate::normalize::internal {

// No JSON member of an image is larger than this.
constexpr uint64_t kMaxJsonBytes = 16u << 20;

// The bytes of member `name`; errors name `what` and the member.
Result<std::string> read_member(const ImageFiles& files, const std::string& name, const std::string& what);

// bad_input "<what> is not valid JSON: <why>".
Result<nlohmann::json> parse_json(const std::string& bytes, const std::string& what);

}  // namespace quorate::normalize::internal
