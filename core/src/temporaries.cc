// The registry of named temporaries removed when a command is interrupted.
#include "quorate/core/temporaries.h"

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <system_error>
#include <thread>

namespace quorate {
namespace {

// Never destroyed: a signal-handling thread may still use them while the main thread runs exit().
std::mutex& registry_mutex() {
  static auto* m = new std::mutex;
  return *m;
}

std::set<std::string>& registry() {
  static auto* paths = new std::set<std::string>;
  return *paths;
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
    // Another thread may still be writing into a directory: later passes catch what it added meanwhile.
    for (int pass = 0; pass < 1000; ++pass) {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
      if (!std::filesystem::exists(std::filesystem::symlink_status(p, ec)) && !ec) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  registry().clear();
}

}  // namespace quorate
