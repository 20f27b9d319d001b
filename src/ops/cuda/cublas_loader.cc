// load_cublas: dlopen of libcublas.so.13 and its companion libcublasLt, resolved into a function table.
#include "ops/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <filesystem>
#include <vector>

#include "ops/cuda/dl_symbols.h"

namespace embedserve::cuda {
namespace {

constexpr const char* kCublas = "libcublas.so.13";
constexpr const char* kCublasLt = "libcublasLt.so.13";

// Tries `dir/name` (or plain `name` for the loader's own search when dir is empty); RTLD_GLOBAL so that
// libcublas finds the libcublasLt we loaded by its soname.
void* open_in(const std::string& dir, const char* name, std::string* tried, std::string* used) {
  const std::string path = dir.empty() ? std::string(name) : (std::filesystem::path(dir) / name).string();
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    const char* err = dlerror();
    *tried += "\n  " + path + ": " + (err ? err : "not found");
  } else if (used) {
    *used = path;
  }
  return h;
}

StatusOr<CublasApi> resolve(void* lib, const std::string& used) {
  CublasApi api;
  api.path = used;
  EMBEDSERVE_RETURN_IF_ERROR(resolve_symbols(lib, used, "cuBLAS 13", {
      {reinterpret_cast<void**>(&api.create), "cublasCreate_v2"},
      {reinterpret_cast<void**>(&api.destroy), "cublasDestroy_v2"},
      {reinterpret_cast<void**>(&api.set_stream), "cublasSetStream_v2"},
      {reinterpret_cast<void**>(&api.set_math_mode), "cublasSetMathMode"},
      {reinterpret_cast<void**>(&api.set_workspace), "cublasSetWorkspace_v2"},
      {reinterpret_cast<void**>(&api.gemm_ex), "cublasGemmEx"},
      {reinterpret_cast<void**>(&api.status_string), "cublasGetStatusString"},
  }));
  return api;
}

}  // namespace

StatusOr<CublasApi> open_cublas(const std::string& location) {
  std::string tried, used;
  void* lib = nullptr;
  if (!location.empty() && !std::filesystem::is_directory(location)) {
    // A file: that library exactly, with libcublasLt from its folder.
    const std::filesystem::path file(location);
    open_in(file.parent_path().string(), kCublasLt, &tried, nullptr);
    lib = dlopen(file.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (lib) used = file.string();
    else if (const char* err = dlerror()) tried += std::string("\n  ") + err;
  } else {
    const std::vector<std::string> dirs =
        location.empty() ? std::vector<std::string>{"", "/usr/local/cuda/lib64"} : std::vector<std::string>{location};
    for (const auto& d : dirs) {
      open_in(d, kCublasLt, &tried, nullptr);  // best effort: libcublas names it as a dependency
      lib = open_in(d, kCublas, &tried, &used);
      if (lib) break;
    }
  }
  if (!lib)
    return not_found(std::string("the CUDA backend needs cuBLAS (") + kCublas +
                     ") and could not load it; install the CUDA 13 toolkit's libcublas or pip's nvidia-cublas, "
                     "or set EMBEDSERVE_CUBLAS_PATH to the library or its folder. Tried:" + tried);
  return resolve(lib, used);
}

StatusOr<CublasLtApi> open_cublas_lt(const CublasApi& api) {
  // Already loaded beside libcublas (its dependency, and open_cublas loads it first by the same folder): find it
  // by soname without loading anything new, else by the folder of libcublas.
  void* lib = dlopen(kCublasLt, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  if (!lib) {
    const std::string beside = (std::filesystem::path(api.path).parent_path() / kCublasLt).string();
    lib = dlopen(beside.c_str(), RTLD_NOW | RTLD_GLOBAL);
  }
  if (!lib)
    return not_found(std::string("cuBLASLt (") + kCublasLt + "), which fp8 and tuned bf16 GEMMs need, is not loaded beside " +
                     api.path + "; set EMBEDSERVE_CUBLAS_PATH to a folder holding both");
  CublasLtApi lt;
  EMBEDSERVE_RETURN_IF_ERROR(resolve_symbols(lib, std::string(kCublasLt), "cuBLAS 13", {
      {reinterpret_cast<void**>(&lt.create), "cublasLtCreate"},
      {reinterpret_cast<void**>(&lt.destroy), "cublasLtDestroy"},
      {reinterpret_cast<void**>(&lt.desc_create), "cublasLtMatmulDescCreate"},
      {reinterpret_cast<void**>(&lt.desc_destroy), "cublasLtMatmulDescDestroy"},
      {reinterpret_cast<void**>(&lt.desc_set), "cublasLtMatmulDescSetAttribute"},
      {reinterpret_cast<void**>(&lt.layout_create), "cublasLtMatrixLayoutCreate"},
      {reinterpret_cast<void**>(&lt.layout_destroy), "cublasLtMatrixLayoutDestroy"},
      {reinterpret_cast<void**>(&lt.preference_create), "cublasLtMatmulPreferenceCreate"},
      {reinterpret_cast<void**>(&lt.preference_destroy), "cublasLtMatmulPreferenceDestroy"},
      {reinterpret_cast<void**>(&lt.preference_set), "cublasLtMatmulPreferenceSetAttribute"},
      {reinterpret_cast<void**>(&lt.heuristic), "cublasLtMatmulAlgoGetHeuristic"},
      {reinterpret_cast<void**>(&lt.matmul), "cublasLtMatmul"},
      {reinterpret_cast<void**>(&lt.algo_config_get), "cublasLtMatmulAlgoConfigGetAttribute"},
      {reinterpret_cast<void**>(&lt.algo_get_ids), "cublasLtMatmulAlgoGetIds"},
      {reinterpret_cast<void**>(&lt.algo_init), "cublasLtMatmulAlgoInit"},
      {reinterpret_cast<void**>(&lt.algo_cap_get), "cublasLtMatmulAlgoCapGetAttribute"},
      {reinterpret_cast<void**>(&lt.algo_config_set), "cublasLtMatmulAlgoConfigSetAttribute"},
      {reinterpret_cast<void**>(&lt.algo_check), "cublasLtMatmulAlgoCheck"},
  }));
  return lt;
}

Status cublas_status(const CublasApi& api, cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status();
  return internal_error(std::string(what) + ": " + (api.status_string ? api.status_string(st) : "cuBLAS error"));
}

}  // namespace embedserve::cuda
