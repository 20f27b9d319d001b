// run_recorded: a batch's device work replayed as one recorded CUDA graph instead of hundreds of launches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/status.h"
#include "ops/context.h"

namespace embedserve::ops {

// Runs `body` — which issues ops on ctx and nothing else — so that on CUDA its kernels are recorded once per
// `key` as a graph and replayed on later calls with the same key: the host work of ~15 launches per layer
// collapses into one. A key runs live until kRecordAfterCalls of the last kRecentCalls calls had it; that call
// records (a shape that seldom comes back is never recorded: recording costs several live runs). The key must name everything the recorded launches take by value (token and sequence
// counts, grid sizes, flags); device pointers must be the same on every call with that key (fixed workspace),
// and the data they point to (ids, positions, offsets) may change: kernels read it when the graph runs.
// The replay runs the very kernels with the very arguments, so results are bitwise those of running `body`.
// On the CPU, or where ctx.records() says no, it simply runs `body`. `record_now`: a key not yet recorded is recorded
// on this call, frequent or not (the shapes worth recording before the first request comes: start-up).
Status run_recorded(const DeviceContext& ctx, uint64_t key, const std::function<Status()>& body,
                    bool record_now = false);

// Graphs ctx holds now (0 on the CPU).
size_t recorded_graphs(const DeviceContext& ctx);

inline constexpr uint32_t kRecordAfterCalls = 8;
inline constexpr size_t kRecentCalls = 512;

}  // namespace embedserve::ops
