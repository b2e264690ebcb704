// SIGINT/SIGTERM/SIGHUP handling for commands that run programs or leave named temporaries behind when killed.
#pragma once

namespace quorate::cli {

// From now on, SIGINT, SIGTERM and SIGHUP (those not ignored when the process started) kill the process group
// of every program run_process is running (quorate/core/process.h: none of them is in the terminal's
// foreground group, so Ctrl-C would not reach them), remove every registered temporary
// (quorate/core/temporaries.h) and then kill the process with the same signal. Call
// before the command starts any thread or child process: the signals are blocked in the calling thread, and
// so in every thread it starts, and taken by a thread of their own. Once per process; later calls do nothing.
void clean_up_on_interrupt();

}  // namespace quorate::cli
