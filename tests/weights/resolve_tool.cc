// Test helper: prints the directory resolve_model_path gives for a model path or hub id (or the error),
// so Python tests can check interoperation with huggingface_hub's cache.
#include <cstdio>
#include <string>

#include "test_files.h"
#include "weights/model_source.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s MODEL_PATH_OR_HUB_ID [REVISION]\n", argv[0]);
    return 2;
  }
  embedserve::ModelSourceOptions options;
  options.environment = embedserve::testing::hub_environment_from_process();
  if (argc == 3) options.revision = argv[2];
  auto path = embedserve::resolve_model_path(argv[1], options);
  if (!path.ok()) {
    std::fprintf(stderr, "%s\n", path.status().to_string().c_str());
    return 1;
  }
  std::printf("%s\n", path->c_str());
  return 0;
}
