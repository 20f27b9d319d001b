// add: the residual connection, x += y.
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// x = T(x + y), both [rows, cols] dense.
Status add(const DeviceContext& ctx, const Tensor& x, const Tensor& y);

}  // namespace embedserve::ops
