// Structured logs for the daemons: one JSON object per line (time, level, component, event, fields).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace quorate::wire {

// Writes {"ts":"<RFC 3339>","level":"info","component":"node","event":"published",...fields} lines.
// Thread-safe: lines from several threads never interleave. The clock comes from the caller (milliseconds
// since the epoch), so library code reads no clock itself.
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

 private:
  std::mutex mu_;
  std::ostream& out_;
  std::function<int64_t()> clock_ms_;
  std::string component_;
  Level min_level_;
};

}  // namespace quorate::wire
