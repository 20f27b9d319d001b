// The NCCL loader (tensor parallelism on CUDA): its failures are one clear line naming every place tried and the flag
// and variable that choose one, and a library without NCCL's symbols is refused (these run without a GPU, as in CI).
#include "ops/cuda/nccl_loader.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace embedserve::cuda {
namespace {

TEST(NcclLoader, AMissingLibraryNamesWhereItLookedAndHowToChoose) {
  const std::string folder = std::filesystem::temp_directory_path().string();
  for (const std::string& where : {std::string("/nonexistent/libnccl.so.2"), folder}) {
    auto api = open_nccl(where);
    ASSERT_FALSE(api.ok()) << where;
    const std::string& m = api.status().message();
    EXPECT_EQ(api.status().code(), ErrorCode::kNotFound);
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
    EXPECT_NE(m.find(where == folder ? folder + "/libnccl.so.2" : where), std::string::npos) << m;
    EXPECT_NE(m.find("--nccl-path"), std::string::npos) << m;
    EXPECT_NE(m.find("EMBEDSERVE_NCCL_PATH"), std::string::npos) << m;
  }
}

TEST(NcclLoader, ALibraryThatIsNotNcclIsRefusedBySymbol) {
  Dl_info info{};  // libm is loaded in every process of ours: dladdr finds its file
  ASSERT_NE(dladdr(reinterpret_cast<void*>(static_cast<double (*)(double)>(&::cos)), &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  auto api = open_nccl(info.dli_fname);
  ASSERT_FALSE(api.ok());
  EXPECT_NE(api.status().message().find("has no symbol ncclGetVersion"), std::string::npos) << api.status().message();
}

// Without a location the search covers CUDA's folders and pip's wheels under the system's Python.
TEST(NcclLoader, TheDefaultPlacesIncludeCudasFolderAndPipsWheels) {
  const std::vector<std::string> dirs = default_nccl_folders();
  EXPECT_NE(std::find(dirs.begin(), dirs.end(), "/usr/local/cuda/lib64"), dirs.end());
  bool python = false;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib"))
    python = python || e.path().filename().string().rfind("python3", 0) == 0;
  if (!python) GTEST_SKIP() << "no /usr/lib/python3* here";
  EXPECT_TRUE(std::any_of(dirs.begin(), dirs.end(), [](const std::string& d) {
    return d.rfind("/usr/lib/python3", 0) == 0 && d.ends_with("nvidia/nccl/lib");
  }));
}

// Where NCCL is installed (CUDA's toolkit ships it), the default search finds it and reads its version; tp > 1
// then needs nothing but GPUs.
TEST(NcclLoader, TheInstalledNcclLoadsWithItsVersion) {
  if (void* probe = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL)) {
    dlclose(probe);
  } else {
    GTEST_SKIP() << "no libnccl.so.2 on the loader's path";
  }
  auto api = open_nccl("");
  ASSERT_TRUE(api.ok()) << api.status().to_string();
  EXPECT_EQ(api->version.rfind("2.", 0), 0u) << api->version;
  EXPECT_FALSE(api->path.empty());
}

}  // namespace
}  // namespace embedserve::cuda
