// Progress on stderr for a terminal only (progress.h).
#include "progress.h"

#include <unistd.h>

#include <iostream>

#include "quorate/core/display.h"

namespace quorate::cli {

Progress::Progress(const std::string& command, bool quiet)
    : Progress(command, !quiet && ::isatty(STDERR_FILENO) == 1, std::cerr) {}

Progress::Progress(const std::string& command, bool enabled, std::ostream& out)
    : prefix_("quorate " + command + ": "), enabled_(enabled), out_(out) {}

Progress::~Progress() { done(); }

void Progress::line(const std::string& text) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  end_counter();
  out_ << prefix_ << mask_control(text) << "\n" << std::flush;  // names steps and files of hostile inputs
}

void Progress::update(const std::string& text) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  out_ << "\r" << prefix_ << mask_control(text) << "\x1b[K" << std::flush;
  open_ = true;
}

void Progress::done() {
  std::lock_guard lock(mutex_);
  end_counter();
}

void Progress::end_counter() {
  if (!open_) return;
  out_ << "\n" << std::flush;
  open_ = false;
}

std::function<void(const std::string&)> Progress::lines() {
  if (!enabled_) return {};
  return [this](const std::string& text) { line(text); };
}

std::function<void(uint64_t)> Progress::bytes(const std::string& what) {
  if (!enabled_) return {};
  return [this, what](uint64_t n) { update(what + " " + std::to_string(n >> 20) + " MiB"); };
}

}  // namespace quorate::cli
