// NCCL loaded with dlopen when a tensor-parallel CUDA group is made, as cuBLAS is: the binary starts, and runs one
// GPU, on machines without libnccl. nccl.h is included for its types only; nothing links libnccl.
#pragma once

#include <nccl.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace embedserve::cuda {

// The NCCL entry points the backend calls, resolved from libnccl.so.2.
struct NcclApi {
  ncclResult_t (*get_version)(int*) = nullptr;
  ncclResult_t (*comm_init_all)(ncclComm_t*, int, const int*) = nullptr;
  ncclResult_t (*comm_abort)(ncclComm_t) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;
  std::string path;     // the file it was loaded from, for the start-up line
  std::string version;  // "2.28.9"
};

// The folders tried after the dynamic loader's own search when no location is given: CUDA's library folders and
// pip's wheels (nvidia/nccl/lib, nvidia/cu13/lib) under the system's Python package folders.
std::vector<std::string> default_nccl_folders();

// Loads NCCL from `location` (libnccl.so.2 itself, or its folder; empty: the loader's path, then
// default_nccl_folders()). Fails with one line naming every path tried and the flag and variable that choose one.
StatusOr<NcclApi> open_nccl(const std::string& location);

// An NCCL result as a Status naming the call.
Status nccl_status(const NcclApi& api, ncclResult_t result, const char* what);

}  // namespace embedserve::cuda
