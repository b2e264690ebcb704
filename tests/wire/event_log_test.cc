// EventLog: JSON lines, and warnings a hostile peer can provoke limited per node and reason.
#include "quorate/wire/event_log.h"

#include <gtest/gtest.h>

#include <sstream>
#include <vector>

namespace quorate::wire {
namespace {

std::vector<nlohmann::json> lines_of(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(EventLog, AFloodOfOneWarningIsCountedNotWrittenAndTheNextLineSaysHowMany) {
  std::ostringstream text;
  int64_t now = 1'000'000;
  EventLog log{text, [&] { return now; }, "verifier"};
  for (int i = 0; i < 1000; ++i) log.warn("attestation_rejected", {{"node_id", "rogue"}, {"reason", "bad signature"}});
  // Another node, another reason, and info lines each keep their own lines.
  log.warn("attestation_rejected", {{"node_id", "honest"}, {"reason", "bad signature"}});
  log.warn("attestation_rejected", {{"node_id", "rogue"}, {"reason", "unknown key"}});
  for (int i = 0; i < 20; ++i) log.info("decision", {{"node_id", "rogue"}});
  auto lines = lines_of(text.str());
  int rogue_bad = 0, decisions = 0;
  for (const auto& l : lines) {
    if (l["event"] == "attestation_rejected" && l["node_id"] == "rogue" && l["reason"] == "bad signature") ++rogue_bad;
    if (l["event"] == "decision") ++decisions;
    EXPECT_FALSE(l.contains("suppressed")) << l.dump();
  }
  EXPECT_EQ(rogue_bad, EventLog::kWarnBurst);
  EXPECT_EQ(decisions, 20);
  EXPECT_EQ(lines.size(), static_cast<size_t>(EventLog::kWarnBurst + 2 + 20));

  // A window later the next line is written and counts those that were not.
  text.str("");
  now += EventLog::kWarnWindowMs;
  log.warn("attestation_rejected", {{"node_id", "rogue"}, {"reason", "bad signature"}, {"sequence", 1001}});
  lines = lines_of(text.str());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["suppressed"], 1000 - EventLog::kWarnBurst);
  EXPECT_EQ(lines[0]["sequence"], 1001);
  EXPECT_EQ(lines[0]["level"], "warn");
}

// A reason holding a peer's own text makes a key per line. Once the limiter's keys are all taken (4,096 in a
// window), the lines that find no room share one key per event instead of each being written (before: every
// one of them).
TEST(EventLog, WarningsBeyondTheKeysTrackedAreLimitedPerEvent) {
  std::ostringstream text;
  EventLog log{text, [] { return int64_t{5'000'000}; }, "node"};
  constexpr int kKeys = 4096, kBeyond = 3000;
  for (int i = 0; i < kKeys + kBeyond; ++i) {
    log.warn("request_rejected", {{"reason", "repo /x/" + std::to_string(i) + " is not one this node builds"}});
  }
  log.warn("frame_dropped", {{"reason", "garbage"}});  // another event finds room of its own
  auto lines = lines_of(text.str());
  size_t rejected = 0, dropped = 0;
  for (const auto& l : lines) (l["event"] == "request_rejected" ? rejected : dropped) += 1;
  EXPECT_EQ(rejected, static_cast<size_t>(kKeys + EventLog::kWarnBurst));
  EXPECT_EQ(dropped, 1u);
}

// A peer chooses its node id's bytes, its garbage, its reasons: DEL and C1 reach the log escaped (a terminal
// tailing it obeys neither), and the line still parses to the same value.
TEST(EventLog, DelAndC1ControlsAreEscapedNotWrittenRaw) {
  std::ostringstream text;
  EventLog log{text, [] { return int64_t{0}; }, "node"};
  const std::string hostile =
      "n\x7f\xc2\x9b"
      "2J\x1b[1m";
  log.warn("frame_dropped", {{"node_id", hostile}});
  const std::string line = text.str();
  EXPECT_EQ(line.find('\x7f'), std::string::npos) << line;
  EXPECT_EQ(line.find("\xc2\x9b"), std::string::npos) << line;
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  EXPECT_EQ(nlohmann::json::parse(line)["node_id"], hostile);
}

}  // namespace
}  // namespace quorate::wire
