// The registry of named temporaries removed when a command is interrupted, and TempDir.
#include "quorate/core/temporaries.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <map>
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

std::map<uint64_t, std::function<void()>>& undos() {
  static auto* u = new std::map<uint64_t, std::function<void()>>;
  return *u;
}

}  // namespace

bool g_emptied = false;  // by remove_registered_temporaries(); under registry_mutex()

Result<std::filesystem::path> make_temporary(const std::function<Result<std::filesystem::path>()>& make) {
  std::lock_guard lock(registry_mutex());
  if (g_emptied) return Status::io("interrupted");
  auto path = make();
  if (path.ok()) registry().insert(path->string());
  return path;
}

void unregister_temporary(const std::filesystem::path& path) {
  std::lock_guard lock(registry_mutex());
  registry().erase(path.string());
}

uint64_t add_interrupt_undo(std::function<void()> undo) {
  static uint64_t next = 0;
  std::lock_guard lock(registry_mutex());
  undos().emplace(++next, std::move(undo));
  return next;
}

void remove_interrupt_undo(uint64_t key) {
  std::lock_guard lock(registry_mutex());
  undos().erase(key);
}

Status remove_tree(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(path, ec);
  if (fs::symlink_status(path, ec).type() == fs::file_type::not_found) return Status();
  // A directory without write or search permission stops remove_all (not for root): open each one up before
  // the iterator descends into it, links not followed.
  if (fs::symlink_status(path, ec).type() == fs::file_type::directory) {
    ::chmod(path.c_str(), 0700);
    fs::recursive_directory_iterator it(path, fs::directory_options::none, ec), end;
    while (!ec && it != end) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
      it.increment(ec);
    }
  }
  fs::remove_all(path, ec);
  if (ec) return Status::io("remove " + path.string() + ": " + ec.message());
  return Status();
}

void remove_registered_temporaries() {
  std::lock_guard lock(registry_mutex());
  for (const auto& p : registry()) {
    // Another thread may still be writing into a directory: later passes catch what it added meanwhile.
    for (int pass = 0; pass < 1000; ++pass) {
      std::error_code ec;
      (void)remove_tree(p);
      // (libstdc++ sets `ec` for a path that is not there, so its type is what says it is gone: testing `ec`
      // too kept every removal waiting out the 1,000 passes, one second a temporary.)
      if (std::filesystem::symlink_status(p, ec).type() == std::filesystem::file_type::not_found) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  registry().clear();
  for (const auto& [key, undo] : undos()) undo();
  undos().clear();
  g_emptied = true;
}

std::filesystem::path temp_parent(const std::filesystem::path& given) {
  return given.empty() ? std::filesystem::path("/tmp") : given;
}

Result<TempDir> TempDir::create(const std::filesystem::path& parent, std::string_view prefix) {
  if (parent.empty()) return Status::usage("no parent directory given for a temporary directory");
  auto made = QR_TRY(make_temporary([&]() -> Result<std::filesystem::path> {
    std::string templ = (parent / (std::string(prefix) + "XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return Status::from_errno("create a temporary directory in " + parent.string(), errno);
    }
    return std::filesystem::path(templ);
  }));
  return TempDir(made);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() { remove(); }

std::filesystem::path TempDir::release() {
  std::filesystem::path kept = std::move(path_);
  path_.clear();
  if (!kept.empty()) unregister_temporary(kept);
  return kept;
}

void TempDir::remove() {
  if (path_.empty()) return;
  (void)remove_tree(path_);
  unregister_temporary(path_);
  path_.clear();
}

}  // namespace quorate
