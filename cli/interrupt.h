// SIGINT/SIGTERM/SIGHUP handling for commands that leave named temporaries behind when killed.
#pragma once

namespace quorate::cli {

// From now on, SIGINT, SIGTERM and SIGHUP (those not ignored when the process started) remove every
// registered temporary (quorate/core/temporaries.h) and then kill the process with the same signal. Call
// before the command starts any thread or child process: the signals are blocked in the calling thread, and
// so in every thread it starts, and taken by a thread of their own. Once per process; later calls do nothing.
void remove_temporaries_on_interrupt();

}  // namespace quorate::cli
