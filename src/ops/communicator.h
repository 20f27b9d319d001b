// Communicator: the ranks of one tensor-parallel group (which rank a context is, how many there are), made once
// for the group and held by each rank's DeviceContext; ops/all_reduce.h sums over it.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace embedserve::ops {

// One rank's view of its group. The backend's all-reduce lives with the implementation (ops/cpu/thread_group.h:
// rank threads of one process over shared memory; ops/cuda/nccl_communicator.h: NCCL, loaded at run time).
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual Device device() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Releases every rank blocked in (or later entering) a collective of the group with an error, so that one rank
  // failing between two collectives cannot leave the others waiting forever. The group is unusable afterwards
  // (on the CPU until reset()).
  virtual void abort() = 0;
  // After abort(), with every rank's work returned: makes the group usable again where the backend can (the CPU);
  // false where it cannot (an aborted NCCL communicator must be created anew).
  virtual bool reset() = 0;
  // Whether the group sums by reading the other ranks' partials straight from their memory (CUDA: every pair of
  // GPUs with peer access; ops/all_reduce.h says what that asks of the caller).
  virtual bool reads_peers() const { return false; }
  // "in-process threads" or "NCCL 2.x.y from /path", for the start-up line.
  virtual std::string description() const = 0;
};

// What a group of `ranks` needs: the device, the GPUs rank by rank (CUDA), and where NCCL is (CUDA; a library
// file or its folder, empty for the default places).
struct GroupOptions {
  Device device = Device::kCpu;
  int ranks = 1;
  std::vector<int> ordinals;  // CUDA: GPU of rank r, in CUDA_VISIBLE_DEVICES order
  std::string nccl_path;
  // CUDA: sum by peer reads (one kernel per rank reading the other GPUs' partials over NVLink) where every pair of
  // GPUs has peer access; false, or a pair without it: NCCL's all-reduce.
  bool peer_reads = true;
};

// One communicator per rank, index = rank. CPU: an in-process group (shared buffers and a barrier). CUDA: loads
// libnccl.so.2 (GroupOptions::nccl_path, else the loader's path, CUDA's folder and pip's nvidia/nccl/lib), forces
// NCCL_NVLS_ENABLE=0 (NVLink multicast stays off) and makes the communicators with ncclCommInitAll. A missing
// NCCL is an error naming every place tried.
StatusOr<std::vector<std::shared_ptr<Communicator>>> create_group(const GroupOptions& options);

}  // namespace embedserve::ops
