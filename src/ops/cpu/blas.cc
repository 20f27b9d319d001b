// OpenBLAS set-up: thread count and the choice of GEMM kernels, once per process.
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ops/cpu/kernels.h"

// OpenBLAS's own API (cblas.h has the first two; the dynamic-arch entry points are exported by every
// DYNAMIC_ARCH build and are what its library constructor runs).
extern "C" {
void openblas_set_num_threads(int num_threads);
char* openblas_get_corename(void);
void gotoblas_dynamic_init(void);
void gotoblas_dynamic_quit(void);
}

namespace embedserve::ops::cpu {
namespace {

bool has_avx512_for_skylakex() {
  // OpenBLAS's SkylakeX kernels use AVX-512 F/CD/BW/DQ/VL; __builtin_cpu_supports also checks the OS
  // saves the zmm state (XCR0).
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}

// What OpenBLAS's kernels for a core need: 2 for AVX-512 (SkylakeX and later), 1 for AVX2+FMA, else 0.
int kernel_level(const char* core) {
  for (const char* c : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    if (std::strcmp(core, c) == 0) return 2;
  for (const char* c : {"Haswell", "Zen", "Excavator"})
    if (std::strcmp(core, c) == 0) return 1;
  return 0;
}

int cpu_level() {
  if (has_avx512_for_skylakex()) return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
  return 0;
}

std::atomic<int> g_threads{1};

// OpenBLAS 0.3.21 picks kernels by CPU model, and a model it does not know gets older kernels than the CPU can
// run (a virtual machine that hides the model gets SSE3 "Prescott" kernels, 4-5x slower than its AVX-512
// ones). Pick by the instruction sets the CPU reports instead, when that is better.
// Runs as a constructor, before main and so before any thread exists: it must set an environment variable
// (OpenBLAS reads the forced core only from there), and setenv is unsafe once other threads may read the
// environment. OpenBLAS's own constructor may run before or after this one: gotoblas_dynamic_init does
// nothing once kernels are chosen, so whichever runs first, the choice made here stands.
__attribute__((constructor)) void choose_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user chose
  gotoblas_dynamic_init();                                  // OpenBLAS's choice, if its constructor has not run
  const int want = cpu_level();
  if (want <= kernel_level(openblas_get_corename())) return;
  setenv("OPENBLAS_CORETYPE", want == 2 ? "SkylakeX" : "Haswell", 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

void configure_blas(int threads) {
  g_threads = threads > 0 ? threads : omp_get_num_procs();
  // We link OpenBLAS's OpenMP build, so its GEMMs and our kernels share libgomp's one thread pool:
  // no second pool spinning against ours, and a GEMM called inside our parallel regions (attention)
  // runs single-threaded instead of oversubscribing.
  omp_set_num_threads(g_threads);
  openblas_set_num_threads(g_threads);
}

void use_configured_threads() {
  thread_local int applied = 0;
  if (applied == g_threads) return;
  omp_set_num_threads(g_threads);
  applied = g_threads;
}

int calling_thread_team_size() { return omp_get_max_threads(); }

int blas_threads() { return g_threads; }

const char* blas_core_name() { return openblas_get_corename(); }

bool blas_rows_independent(int64_t n, int64_t k) {
  // OpenBLAS's small-matrix kernels (sgemm_small_kernel_permit_skylakex.c: taken while M·N·K ≤ 100³) round
  // rows differently; with N·K past 100³ every M stays on the blocked path. Cooperlake and SapphireRapids
  // use the SkylakeX sgemm kernels.
  return kernel_level(openblas_get_corename()) == 2 && n * k > 100 * 100 * 100;
}

}  // namespace embedserve::ops::cpu
