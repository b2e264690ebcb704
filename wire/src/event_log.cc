// JSON-lines event log.
#include "quorate/wire/event_log.h"

#include <cstdio>

#include "quorate/core/time.h"

namespace quorate::wire {

EventLog::EventLog(std::ostream& out, std::function<int64_t()> clock_ms, std::string component, Level min_level)
    : out_(out), clock_ms_(std::move(clock_ms)), component_(std::move(component)), min_level_(min_level) {}

void EventLog::log(Level level, std::string_view event, nlohmann::json fields) {
  if (level < min_level_) return;
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  int64_t ms = clock_ms_ ? clock_ms_() : 0;
  std::string ts = format_rfc3339(ms / 1000);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  ts.replace(ts.size() - 1, 1, frac);
  // Fixed leading keys (time, level, component, event) make the lines easy to scan; fields follow sorted.
  nlohmann::ordered_json line = nlohmann::ordered_json::object();
  line["ts"] = ts;
  line["level"] = kNames[static_cast<int>(level)];
  line["component"] = component_;
  line["event"] = event;
  if (fields.is_object()) {
    for (auto& [k, v] : fields.items()) line[k] = v;
  }
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::lock_guard<std::mutex> lock(mu_);
  out_ << text << '\n';
  out_.flush();
}

}  // namespace quorate::wire
