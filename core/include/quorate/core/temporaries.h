// Temporaries that must not outlive their owner or an interrupted process: TempDir, and the registry a
// command's signal handling empties.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate {

// AtomicFile, AtomicDir, TempDir and other owners of named temporaries make and register each one in one step
// and unregister it once it is committed or removed. Thread-safe. `make` creates the temporary and returns its
// path; it runs with the registry locked, so that an interrupt on another thread finds either nothing made or
// the whole temporary registered (made first and registered after, one made in between was left behind). Once
// an interrupt has emptied the registry nothing more is made: io "interrupted".
Result<std::filesystem::path> make_temporary(const std::function<Result<std::filesystem::path>()>& make);
void unregister_temporary(const std::filesystem::path& path);

// Removes every registered temporary (files, or directories with their contents) and forgets them; errors
// are ignored. Called by a command's SIGINT/SIGTERM handling (on a thread of its own, not from a signal
// handler) just before the process dies, so no destructor runs to do it.
void remove_registered_temporaries();

// What an interrupt must undo besides removing paths (the blobs an import has already committed): `undo`
// runs on the interrupt's thread once every registered path is gone (so no AtomicFile can commit any more),
// with the registry locked, and must not make or unregister temporaries. Returns a key for
// remove_interrupt_undo(), which waits for a running `undo` to end: call it before what `undo` uses dies.
// Thread-safe.
uint64_t add_interrupt_undo(std::function<void()> undo);
void remove_interrupt_undo(uint64_t key);

// Removes `path` and everything under it, never following a link; OK when it is not there. A directory in it
// that cannot be listed or emptied (an image's or a build step's `chmod 0555` or `0000`; root is not stopped
// by modes, other users are) is made 0700 first. io naming `path` when something stays. Whoever could change
// the tree must have stopped.
Status remove_tree(const std::filesystem::path& path);

// `given`, or /tmp when it is empty: the one place of the documented default of the options that name a
// temporary directory (LayerOptions::temp_dir, DiffOptions::temp_dir, TempFile). Libraries never read $TMPDIR;
// the CLI does and passes it.
std::filesystem::path temp_parent(const std::filesystem::path& given);

// A fresh private directory (mkdtemp, mode 0700) under a parent the caller names, removed with everything in
// it when the object dies, unless released. Registered as a temporary while it owns the directory. There is
// no default parent: a library is handed one (a work directory, or $TMPDIR as the CLI resolved it). Movable,
// not copyable; one object is not thread-safe.
class TempDir {
 public:
  // The directory `parent`/`prefix`XXXXXX. usage when `parent` is empty; io naming the parent when it cannot
  // be created (the parent is not created either).
  static Result<TempDir> create(const std::filesystem::path& parent, std::string_view prefix);
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  // Gives the directory up: it is no longer removed, here or on interrupt. Returns its path.
  std::filesystem::path release();

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  void remove();
  std::filesystem::path path_;  // empty once released or moved from
};

}  // namespace quorate
