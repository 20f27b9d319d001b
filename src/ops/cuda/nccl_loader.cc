// open_nccl: dlopen of libnccl.so.2 from the user's choice or the usual places, resolved into a function table.
#include "ops/cuda/nccl_loader.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>

#include "ops/cuda/dl_symbols.h"

namespace embedserve::cuda {
namespace {

constexpr const char* kNccl = "libnccl.so.2";

StatusOr<NcclApi> resolve(void* lib, const std::string& used) {
  NcclApi api;
  api.path = used;
  EMBEDSERVE_RETURN_IF_ERROR(resolve_symbols(lib, used, "NCCL 2", {
      {reinterpret_cast<void**>(&api.get_version), "ncclGetVersion"},
      {reinterpret_cast<void**>(&api.comm_init_all), "ncclCommInitAll"},
      {reinterpret_cast<void**>(&api.comm_abort), "ncclCommAbort"},
      {reinterpret_cast<void**>(&api.all_reduce), "ncclAllReduce"},
      {reinterpret_cast<void**>(&api.error_string), "ncclGetErrorString"},
  }));
  int v = 0;
  if (api.get_version(&v) == ncclSuccess)  // NCCL_VERSION(X,Y,Z) = X*10000 + Y*100 + Z since 2.9
    api.version = std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  return api;
}

}  // namespace

std::vector<std::string> default_nccl_folders() {
  // CUDA 13's toolkit puts libnccl in lib/, older ones in lib64/.
  std::vector<std::string> dirs = {"/usr/local/cuda/lib64", "/usr/local/cuda/lib",
                                   "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu"};
  // pip's wheels: nvidia-nccl-cu13 puts the library in nvidia/nccl/lib, CUDA 13's unified wheels in nvidia/cu13/lib.
  std::vector<std::string> pythons;
  for (const char* root : {"/usr/local/lib", "/usr/lib"}) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(root, ec))
      if (entry.path().filename().string().rfind("python3", 0) == 0) pythons.push_back(entry.path().string());
  }
  std::sort(pythons.begin(), pythons.end());
  for (const std::string& python : pythons)
    for (const char* packages : {"dist-packages", "site-packages"})
      for (const char* wheel : {"nvidia/nccl/lib", "nvidia/cu13/lib"})
        dirs.push_back((std::filesystem::path(python) / packages / wheel).string());
  return dirs;
}

StatusOr<NcclApi> open_nccl(const std::string& location) {
  std::string tried;
  std::vector<std::string> candidates;
  if (!location.empty() && !std::filesystem::is_directory(location)) {
    candidates.push_back(location);
  } else if (!location.empty()) {
    candidates.push_back((std::filesystem::path(location) / kNccl).string());
  } else {
    candidates.push_back(kNccl);  // the dynamic loader's path (LD_LIBRARY_PATH, ld.so.cache)
    for (const std::string& d : default_nccl_folders()) candidates.push_back((std::filesystem::path(d) / kNccl).string());
  }
  for (const std::string& path : candidates) {
    if (void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return resolve(lib, path);
    const char* err = dlerror();
    tried += (tried.empty() ? "" : "; ") + path + (err && path == location ? std::string(" (") + err + ")" : "");
  }
  return not_found(std::string("--tp above 1 on CUDA needs NCCL (") + kNccl +
                   ") and could not load it; install pip's nvidia-nccl-cu13 or the CUDA toolkit's libnccl2, or "
                   "name it with --nccl-path or EMBEDSERVE_NCCL_PATH (the library or its folder). Tried: " + tried);
}

Status nccl_status(const NcclApi& api, ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return Status();
  return internal_error(std::string(what) + ": " + (api.error_string ? api.error_string(result) : "NCCL error") +
                        " (NCCL_DEBUG=WARN says more)");
}

}  // namespace embedserve::cuda
