// Times the CPU's GEMM paths on one linear layer's shape: OpenBLAS sgemm on f32 weights (the f32 mode) against
// each bf16-weight kernel this CPU runs (cpu::linear_bf16), in GFLOP/s by wall clock and by CPU time (which a
// shared machine's other processes disturb less).
//
//   gemm_bench [--threads N] [--seconds S] M,N,K [M,N,K ...]
//   e.g. the 0.6B's gate|up at 32 and 512 tokens: gemm_bench --threads 1 32,6144,1024 512,6144,1024
#include <sys/resource.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/cpu/kernels.h"

namespace {

using embedserve::ops::cpu::Bf16Kernel;
namespace cpu = embedserve::ops::cpu;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// Runs `body` for at least `seconds` (after one untimed call); returns (GFLOP/s wall, GFLOP/s of CPU time).
template <typename Body>
std::pair<double, double> rate(double flops, double seconds, Body body) {
  body();
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  double wall = 0;
  do {
    body();
    ++calls;
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (wall < seconds);
  const double cpu = cpu_seconds() - c0;
  return {flops * calls / wall / 1e9, flops * calls / cpu / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  double seconds = 2;
  std::vector<std::array<int64_t, 3>> shapes;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      long long m, n, k;
      if (std::sscanf(argv[i], "%lld,%lld,%lld", &m, &n, &k) != 3 || m < 1 || n < 1 || k < 1) {
        std::fprintf(stderr, "usage: gemm_bench [--threads N] [--seconds S] M,N,K [M,N,K ...]\n");
        return 2;
      }
      shapes.push_back({m, n, k});
    }
  }
  if (shapes.empty()) shapes = {{32, 6144, 1024}, {512, 6144, 1024}};
  cpu::configure_blas(threads);
  std::printf("%d threads, OpenBLAS %s kernels; GFLOP/s by wall clock (by CPU time)\n", cpu::blas_threads(),
              cpu::blas_core_name());
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [m, n, k] : shapes) {
    std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k)), y(static_cast<size_t>(m * n));
    for (float& v : x) v = normal(rng);
    for (float& v : w) v = normal(rng) * 0.03f;
    std::vector<uint16_t> wb(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &w[i], 4);
      wb[i] = static_cast<uint16_t>(u >> 16);  // truncation is fine for timing
    }
    const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
    const std::vector<int32_t> one_group = {0, static_cast<int32_t>(m)};
    std::printf("M %lld, N %lld, K %lld:\n", static_cast<long long>(m), static_cast<long long>(n),
                static_cast<long long>(k));
    auto [sw, sc] = rate(flops, seconds, [&] { cpu::linear(x.data(), w.data(), y.data(), m, n, k, one_group); });
    std::printf("  %-64s %8.1f (%8.1f)\n", "OpenBLAS sgemm, f32 weights (one call for all rows)", sw, sc);
    for (Bf16Kernel kernel : {Bf16Kernel::kAvx512Bf16, Bf16Kernel::kAvx512, Bf16Kernel::kAvx2, Bf16Kernel::kPortable}) {
      if (!cpu::bf16_kernel_supported(kernel)) continue;
      if (kernel == Bf16Kernel::kPortable && m * n * k > (int64_t{1} << 28)) continue;  // minutes, not seconds
      auto [bw, bc] = rate(flops, seconds, [&] { cpu::linear_bf16(kernel, x.data(), wb.data(), y.data(), m, n, k); });
      std::printf("  %-64s %8.1f (%8.1f)\n", cpu::bf16_kernel_name(kernel), bw, bc);
    }
  }
  return 0;
}
