// The SHA-256 digest of a file's bytes, for checking a blob against the digest it is named by.
#pragma once

#include <filesystem>
#include <string>

#include "quorate/core/status.h"

namespace quorate {

// "sha256:<hex>" of the bytes of the file at `path`, read a MiB at a time (memory does not grow with its
// size); io naming the path when it cannot be opened or read.
Result<std::string> sha256_file_digest(const std::filesystem::path& path);

}  // namespace quorate
