// JSON-lines event log.
#include "quorate/wire/event_log.h"

#include <cstdio>
#include <utility>

#include "quorate/core/json.h"
#include "quorate/core/time.h"

namespace quorate::wire {

EventLog::EventLog(std::ostream& out, std::function<int64_t()> clock_ms, std::string component, Level min_level)
    : out_(out), clock_ms_(std::move(clock_ms)), component_(std::move(component)), min_level_(min_level) {}

bool EventLog::admit_warning(std::string_view event, nlohmann::json& fields, int64_t now_ms) {
  constexpr size_t kMaxKeys = 4096;  // node ids come from the configuration; this bounds the map regardless
  std::string key(event);
  for (const char* name : {"node_id", "reason", "socket"}) {
    auto it = fields.is_object() ? fields.find(name) : fields.end();
    key += '\0';
    if (it != fields.end() && it->is_string()) key += it->get<std::string>();
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto found = warn_windows_.find(key);
  if (found == warn_windows_.end()) {
    if (warn_windows_.size() >= kMaxKeys) {
      std::erase_if(warn_windows_, [&](const auto& kv) {
        return kv.second.suppressed == 0 && now_ms - kv.second.start_ms >= kWarnWindowMs;
      });
    }
    // Still full (a peer putting its own text in a reason makes a key per line): the line is limited with the
    // others of its event that found no room, instead of being written unlimited.
    if (warn_windows_.size() >= kMaxKeys) {
      key = std::string(event);
      key += '\0';
      key += "(keys full)";
    }
    found = warn_windows_.find(key);
    if (found == warn_windows_.end()) found = warn_windows_.emplace(std::move(key), Window{now_ms, 0, 0}).first;
  }
  Window& w = found->second;
  if (now_ms - w.start_ms >= kWarnWindowMs || now_ms < w.start_ms) {
    w.start_ms = now_ms;
    w.written = 0;
  }
  if (w.written >= kWarnBurst) {
    ++w.suppressed;
    return false;
  }
  ++w.written;
  if (w.suppressed > 0 && fields.is_object()) fields["suppressed"] = std::exchange(w.suppressed, 0);
  return true;
}

void EventLog::log(Level level, std::string_view event, nlohmann::json fields) {
  if (level < min_level_) return;
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  int64_t ms = clock_ms_ ? clock_ms_() : 0;
  if (level == Level::kWarn && !admit_warning(event, fields, ms)) return;
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
  // A node id, a reason or a peer's address can hold what a peer chose: DEL and C1 escaped, not raw.
  std::string text = escape_display_controls(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  std::lock_guard<std::mutex> lock(mu_);
  out_ << text << '\n';
  out_.flush();
}

}  // namespace quorate::wire
