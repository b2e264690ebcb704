// The environment variables commands pass on to libraries ($TMPDIR, $PATH), read in one place.
#include <cstdlib>

#include "quorate/cli/cli.h"
#include "quorate/core/process.h"

namespace quorate::cli {

std::filesystem::path temp_dir_from_env() {
  const char* tmpdir = std::getenv("TMPDIR");
  return tmpdir != nullptr ? std::filesystem::path(tmpdir) : std::filesystem::path();
}

std::filesystem::path program_on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  return find_program(name, path != nullptr ? path : "").value_or(std::filesystem::path());
}

}  // namespace quorate::cli
