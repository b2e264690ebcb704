// What the two daemon commands (`quorate node`, `quorate quorum`) share around a daemon's run: the wall clock
// they are handed, and the stop flag SIGTERM and SIGINT set.
#include <signal.h>

#include <atomic>
#include <chrono>

#include "quorate/cli/cli.h"

namespace quorate::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop = true; }

}  // namespace

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::atomic<bool>& stop_on_termination_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return g_stop;
}

}  // namespace quorate::cli
