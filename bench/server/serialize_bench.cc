// Cost of writing embeddings into a response: shortest round-trip float JSON (JsonWriter, std::to_chars) vs
// base64 little-endian float32, per vector, for hidden sizes of the tiny model, Qwen3-Embedding-0.6B and -8B.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "server/base64.h"
#include "server/json_writer.h"

namespace {

constexpr int kVectors = 256;

// Unit vectors of N(0,1) components: the magnitudes (~1/sqrt(hidden)) and digit counts of real embeddings,
// which is what to_chars' cost depends on.
std::vector<float> unit_vectors(int hidden) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(kVectors) * hidden);  // f32 [kVectors, hidden]
  for (int r = 0; r < kVectors; ++r) {
    double sum = 0;
    for (int c = 0; c < hidden; ++c) sum += std::pow(v[r * hidden + c] = normal(rng), 2);
    for (int c = 0; c < hidden; ++c) v[r * hidden + c] /= static_cast<float>(std::sqrt(sum));
  }
  return v;
}

// items_per_second is vectors per second; bytes_per_vector is the response text one vector adds.
void set_counters(benchmark::State& state, size_t bytes) {
  state.SetItemsProcessed(state.iterations() * kVectors);
  state.counters["bytes_per_vector"] = static_cast<double>(bytes) / kVectors;
}

void BM_FloatJson(benchmark::State& state) {
  const int hidden = static_cast<int>(state.range(0));
  const std::vector<float> v = unit_vectors(hidden);
  std::string out;
  for (auto _ : state) {
    out.clear();
    embedserve::JsonWriter w(out);
    w.begin_array();
    for (int r = 0; r < kVectors; ++r) w.float_array({v.data() + static_cast<size_t>(r) * hidden, static_cast<size_t>(hidden)});
    w.end_array();
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, out.size());
}

void BM_Base64(benchmark::State& state) {
  const int hidden = static_cast<int>(state.range(0));
  const std::vector<float> v = unit_vectors(hidden);
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (int r = 0; r < kVectors; ++r)
      embedserve::base64_encode_floats({v.data() + static_cast<size_t>(r) * hidden, static_cast<size_t>(hidden)}, out);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, out.size());
}

BENCHMARK(BM_FloatJson)->Arg(32)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Base64)->Arg(32)->Arg(1024)->Arg(4096)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
