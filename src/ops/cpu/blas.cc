// OpenBLAS set-up: thread count and the choice of GEMM kernels, once per process.
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
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

bool core_is(const char* name) { return std::strcmp(openblas_get_corename(), name) == 0; }

std::once_flag g_kernels_once;
int g_threads = 1;

void choose_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user chose
  const bool avx2_fallback = core_is("Haswell") || core_is("Zen");
  if (!avx2_fallback || !has_avx512_for_skylakex()) return;
  // Re-run OpenBLAS's kernel selection with the core forced; nothing has called BLAS yet.
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

void configure_blas(int threads) {
  std::call_once(g_kernels_once, choose_kernels);
  g_threads = threads > 0 ? threads : omp_get_num_procs();
  // We link OpenBLAS's OpenMP build, so its GEMMs and our kernels share libgomp's one thread pool:
  // no second pool spinning against ours, and a GEMM called inside our parallel regions (attention)
  // runs single-threaded instead of oversubscribing.
  omp_set_num_threads(g_threads);
  openblas_set_num_threads(g_threads);
}

int blas_threads() { return g_threads; }

const char* blas_core_name() { return openblas_get_corename(); }

bool blas_rows_independent() { return core_is("SkylakeX") || core_is("Cooperlake"); }

}  // namespace embedserve::ops::cpu
