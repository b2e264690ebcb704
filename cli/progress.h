// Progress of long work (builds, image pulls and unpacks, normalize of large layers, diff --deep) for a
// person watching: on stderr, only when stderr is a terminal and --quiet is not given. Logs, pipes and CI get
// none of it (their stderr carries errors and warnings only), so progress never needs to be filtered out.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>

namespace quorate::cli {

class Progress {
 public:
  // Shown when !quiet and stderr (fd 2) is a terminal; every line starts with "quorate COMMAND: ".
  Progress(const std::string& command, bool quiet);
  // For tests: shown when `enabled`, written to `out`.
  Progress(const std::string& command, bool enabled, std::ostream& out);
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress();

  bool enabled() const { return enabled_; }
  // A line of its own ("step 1/3: …"); ends a counter line first.
  void line(const std::string& text);
  // A counter rewritten in place ("read 512 MiB"): '\r', the text, clear to the end of the line. Ended by
  // the next line(), done() or the destructor.
  void update(const std::string& text);
  void done();
  // For a library's progress option: empty when not shown, so the library does no work for it. The
  // function refers to this object, which must outlive its use.
  std::function<void(const std::string&)> lines();
  // Input bytes read so far, shown as a counter in MiB.
  std::function<void(uint64_t)> bytes(const std::string& what);

 private:
  void end_counter();  // under mutex_
  std::string prefix_;
  bool enabled_;
  std::ostream& out_;
  bool open_ = false;  // a counter line is showing
  std::mutex mutex_;   // libraries may report from a worker thread
};

}  // namespace quorate::cli
