// What commands read from outside their options: environment variables passed on to libraries ($TMPDIR,
// $PATH) and passphrase files, each read in one place.
#include <algorithm>
#include <cstdlib>

#include "quorate/cli/cli.h"
#include "quorate/core/file.h"
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

Result<std::string> read_passphrase_file(const std::string& path) {
  if (path.empty()) return std::string();
  auto text = QR_TRY(read_file(path, 4096));
  text.resize(std::min(text.size(), text.find_first_of("\r\n")));
  if (text.empty()) return Status::bad_input(path + ": empty passphrase (its first line is empty)");
  return text;
}

}  // namespace quorate::cli
