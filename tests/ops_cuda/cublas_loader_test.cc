// The cuBLAS loader's failures are clear errors (these run without a GPU or CUDA libraries, as in CI).
#include "ops/cuda/cublas_loader.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace embedserve::cuda {
namespace {

TEST(CublasLoader, MissingLibraryNamesItAndTheVariable) {
  const std::vector<std::string> places = {"/nonexistent/libcublas.so.13",
                                           std::filesystem::temp_directory_path().string()};
  for (const std::string& where : places) {
    auto api = open_cublas(where);
    ASSERT_FALSE(api.ok()) << where;
    EXPECT_EQ(api.status().code(), ErrorCode::kNotFound);
    EXPECT_NE(api.status().message().find("libcublas.so.13"), std::string::npos) << api.status().message();
    EXPECT_NE(api.status().message().find("EMBEDSERVE_CUBLAS_PATH"), std::string::npos) << api.status().message();
  }
}

TEST(CublasLoader, ALibraryThatIsNotCublasIsRefusedBySymbol) {
  // libm is loaded in every process of ours: dladdr finds its file.
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(static_cast<double (*)(double)>(&::cos)), &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  auto api = open_cublas(info.dli_fname);
  ASSERT_FALSE(api.ok());
  EXPECT_NE(api.status().message().find("has no symbol cublasCreate_v2"), std::string::npos) << api.status().message();
}

}  // namespace
}  // namespace embedserve::cuda
