// libgit2 in one place: its initialisation, owned handles, its error text, and opening a repository.
#pragma once

#include <git2.h>

#include <string>

#include "quorate/core/status.h"

namespace quorate::git {

// Keeps libgit2 initialised while it lives (git_libgit2_init/shutdown, which libgit2 counts, so any number
// may live at once, on any threads). Declare it before the handles it outlives.
class Library {
 public:
  Library() { git_libgit2_init(); }
  ~Library() { git_libgit2_shutdown(); }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
};

// Owns one libgit2 object and frees it with `Free`. Not copyable.
template <class T, void (*Free)(T*)>
struct Ptr {
  T* p = nullptr;
  Ptr() = default;
  Ptr(const Ptr&) = delete;
  Ptr& operator=(const Ptr&) = delete;
  ~Ptr() {
    if (p) Free(p);
  }
};

using Repository = Ptr<git_repository, git_repository_free>;

// The message of libgit2's last error on this thread, or "unknown libgit2 error".
std::string last_error();

// An object id as 40 hex digits.
std::string oid_hex(const git_oid* oid);

// Opens the repository at `path` (a working clone or a bare repository; no search of parent directories)
// into `repo`. not_found "cannot open repository <name>: <libgit2's words>", where `name` is how the caller
// was given the repository (empty: `path`). Needs a live Library.
Status open_repository(const std::string& path, Repository& repo, const std::string& name = {});

}  // namespace quorate::git
