// partial_files: fixed slots the signal handler reads (it may call only async-signal-safe functions: unlink,
// signal, raise), filled by the writers on the main thread.
#include "cli/partial_files.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>

#include <unistd.h>

namespace embedserve::cli {
namespace {

constexpr int kSlots = 4;
char g_paths[kSlots][4096];
volatile std::sig_atomic_t g_used[kSlots];

void unlink_and_die(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i]) ::unlink(g_paths[i]);
  std::signal(sig, SIG_DFL);
  std::raise(sig);  // exit as the signal would have made us: the shell and CI see "killed by SIGINT", not 0
}

}  // namespace

void unlink_on_signal(const std::filesystem::path& partial) {
  const std::string& s = partial.native();
  if (s.size() >= sizeof g_paths[0]) return;
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i]) continue;
    std::memcpy(g_paths[i], s.c_str(), s.size() + 1);
    std::atomic_signal_fence(std::memory_order_release);  // the path is whole before the handler may read it
    g_used[i] = 1;
    static std::once_flag installed;
    std::call_once(installed, [] {
      std::signal(SIGINT, unlink_and_die);
      std::signal(SIGTERM, unlink_and_die);
    });
    return;
  }
}

void forget_on_signal(const std::filesystem::path& partial) {
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i] && partial.native() == g_paths[i]) g_used[i] = 0;
}

}  // namespace embedserve::cli
