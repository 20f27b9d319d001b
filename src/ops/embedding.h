// embedding: rows of the token embedding table gathered by token id (nn.Embedding).
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// out [n, dim] in ctx.dtype() = table [vocab, dim] rows ids[0..n). The table may be stored in another dtype
// (the CPU reads a bf16/f16 mapping and widens exactly). Ids are already checked against vocab by Engine::embed.
Status embedding(const DeviceContext& ctx, const Tensor& table, const Index& ids, const Tensor& out);

}  // namespace embedserve::ops
