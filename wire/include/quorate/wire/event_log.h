// Structured logs for the daemons: one JSON object per line (time, level, component, event, fields).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace quorate::wire {

// Writes {"ts":"<RFC 3339>","level":"info","component":"node","event":"published",...fields} lines.
// Thread-safe: lines from several threads never interleave. The clock comes from the caller (milliseconds
// since the epoch), so library code reads no clock itself.
//
// Warnings are what a hostile peer provokes (a garbage frame, a forged attestation: one line each), so they are
// limited: of the warn lines with the same event and the same node_id, reason and socket fields, at most
// kWarnBurst are written in kWarnWindowMs; the rest are counted, and the next one written for that key says
// how many were not ("suppressed": N). The daemons' counters count every one. At most 4,096 keys are tracked;
// beyond them (keys made of a peer's text), the lines of one event share one more key.
class EventLog {
 public:
  enum class Level { kDebug, kInfo, kWarn, kError };
  EventLog(std::ostream& out, std::function<int64_t()> clock_ms, std::string component, Level min_level = Level::kInfo);

  void log(Level level, std::string_view event, nlohmann::json fields = nlohmann::json::object());
  void debug(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kDebug, event, std::move(fields));
  }
  void info(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kInfo, event, std::move(fields));
  }
  void warn(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kWarn, event, std::move(fields));
  }
  void error(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kError, event, std::move(fields));
  }

  static constexpr int kWarnBurst = 10;
  static constexpr int64_t kWarnWindowMs = 10'000;

 private:
  struct Window {
    int64_t start_ms = 0;
    int written = 0;
    uint64_t suppressed = 0;
  };
  // False when the line is to be counted, not written; sets "suppressed" in `fields` when lines were.
  bool admit_warning(std::string_view event, nlohmann::json& fields, int64_t now_ms);

  std::mutex mu_;
  std::map<std::string, Window> warn_windows_;
  std::ostream& out_;
  std::function<int64_t()> clock_ms_;
  std::string component_;
  Level min_level_;
};

}  // namespace quorate::wire
