// A thread that waits for SIGINT/SIGTERM/SIGHUP, kills the running child processes, removes the registered
// temporaries and dies of the signal.
#include "interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "quorate/core/process.h"
#include "quorate/core/temporaries.h"

namespace quorate::cli {
namespace {

std::atomic<bool> g_interrupted{false};

// Once the signal is taken, the command's own threads may fail on the temporaries being removed and return
// from main: exit() then waits here, so the process still dies of the signal, not with that error's status.
void wait_for_the_signal() {
  while (g_interrupted.load()) ::pause();
}

}  // namespace

void clean_up_on_interrupt() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    // A signal ignored at start (nohup, a background job of a non-interactive shell) stays ignored.
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN) sigaddset(&set, sig);
  }
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atexit(wait_for_the_signal);
  std::thread([set] {
    int sig = 0;
    if (::sigwait(&set, &sig) != 0) return;
    g_interrupted = true;
    kill_running_processes();  // first: a child still writing into a temporary would undo its removal
    remove_registered_temporaries();
    ::signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    ::pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    ::raise(sig);  // dies of the signal, so the parent sees what happened (exit status 128 + sig in a shell)
  }).detach();
}

}  // namespace quorate::cli
