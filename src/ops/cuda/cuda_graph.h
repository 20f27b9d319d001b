// CUDA graphs per context: record a batch's launches once per shape, replay them after (least recently used out).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/status.h"
#include "ops/context.h"

namespace embedserve::ops::cuda_backend {

Status run_recorded(const DeviceContext& ctx, uint64_t key, const std::function<Status()>& body, bool record_now);
size_t recorded_graphs(const DeviceContext& ctx);

}  // namespace embedserve::ops::cuda_backend
