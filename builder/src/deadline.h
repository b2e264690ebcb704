// BuildDeadline: how long one build may still take, whatever it is doing.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "quorate/builder/build.h"
#include "quorate/core/status.h"

namespace quorate::builder {

// Set once when build() starts, from BuildOptions::timeout on the monotonic clock, and checked between steps
// and for each file a step copies or a layer holds: a commit cannot keep a node busy past its timeout by
// parsing, copying or packing rather than running. It decides whether a build fails, never an output byte.
class BuildDeadline {
 public:
  explicit BuildDeadline(const BuildOptions& options)
      : at_(std::chrono::steady_clock::now() + options.timeout), options_(options) {}

  std::chrono::steady_clock::time_point at() const { return at_; }

  // bad_input "timed out (build timeout N s: …)" past the deadline; internal "build cancelled" once the
  // options' cancel flag is set.
  Status check() const {
    if (options_.cancel && options_.cancel->load()) return Status::internal("build cancelled");
    if (std::chrono::steady_clock::now() < at_) return Status();
    return Status::bad_input("timed out" + limit_text());
  }

  // " (build timeout N s: quorate build --timeout, node build.timeout_seconds)", added to any timeout.
  std::string limit_text() const {
    return " (build timeout " + std::to_string(options_.timeout.count()) +
           " s: quorate build --timeout, node build.timeout_seconds)";
  }

 private:
  std::chrono::steady_clock::time_point at_;
  const BuildOptions& options_;
};

}  // namespace quorate::builder
