// The CUDA side of WeightUploader: worker threads, each with a pinned staging buffer and a stream of its own.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "ops/context.h"
#include "ops/weight_upload.h"

namespace embedserve::ops::cuda_backend {

// Copies every chunk to the context's GPU; (*flagged)[i] is set where chunk i's source holds a NaN or infinity.
Status upload_chunks(const DeviceContext& ctx, std::span<const UploadChunk> chunks, int workers,
                     std::vector<uint8_t>* flagged);

}  // namespace embedserve::ops::cuda_backend
