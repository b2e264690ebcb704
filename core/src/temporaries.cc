// The registry of named temporaries removed when a command is interrupted.
#include "quorate/core/temporaries.h"

#include <mutex>
#include <set>
#include <string>
#include <system_error>

namespace quorate {
namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::set<std::string>& registry() {
  static std::set<std::string> paths;
  return paths;
}

}  // namespace

void register_temporary(const std::filesystem::path& path) {
  std::lock_guard lock(registry_mutex());
  registry().insert(path.string());
}

void unregister_temporary(const std::filesystem::path& path) {
  std::lock_guard lock(registry_mutex());
  registry().erase(path.string());
}

void remove_registered_temporaries() {
  std::lock_guard lock(registry_mutex());
  for (const auto& p : registry()) {
    // Another thread may still be writing into a directory: a second pass catches what it added meanwhile.
    for (int pass = 0; pass < 3; ++pass) {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
      if (!ec && !std::filesystem::exists(std::filesystem::symlink_status(p, ec))) break;
    }
  }
  registry().clear();
}

}  // namespace quorate
