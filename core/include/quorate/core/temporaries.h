// Temporaries that must not outlive an interrupted process: a registry the signal handling of a command empties.
#pragma once

#include <filesystem>

namespace quorate {

// AtomicFile, AtomicDir and other owners of named temporaries register each one while it exists and
// unregister it once it is committed or removed. Thread-safe.
void register_temporary(const std::filesystem::path& path);
void unregister_temporary(const std::filesystem::path& path);

// Removes every registered temporary (files, or directories with their contents) and forgets them; errors
// are ignored. Called by a command's SIGINT/SIGTERM handling (on a thread of its own, not from a signal
// handler) just before the process dies, so no destructor runs to do it.
void remove_registered_temporaries();

}  // namespace quorate
