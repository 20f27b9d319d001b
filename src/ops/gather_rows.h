// gather_rows: the rows a layer carries on (the pooled rows of the last layer).
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// out [rows.size(), cols] = x rows `rows`. out must not overlap x (GPU blocks run in any order).
Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Index& rows, const Tensor& out);

}  // namespace embedserve::ops
