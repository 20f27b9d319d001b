// embedserve's entry point: picks the subcommand and hands it the rest of argv.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "cli/thread_policy.h"
#include "embedserve/version.h"

namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  int (*run)(int, char**);
};

constexpr Subcommand kSubcommands[] = {
    {"serve", "run the OpenAI-compatible embedding server", embedserve::cli::run_serve},
    {"embed", "embed a file of texts into .jsonl or .npy", embedserve::cli::run_embed},
    {"tokenize", "turn JSON Lines of text into token ids", embedserve::cli::run_tokenize},
    {"bench", "measure the engine's throughput and latency", embedserve::cli::run_bench},
};

void print_usage(FILE* out) {
  std::fprintf(out,
               "embedserve %s: text embeddings with Qwen3-Embedding, served over an OpenAI-compatible API\n\n"
               "usage: embedserve <command> [flags]\n\ncommands:\n",
               EMBEDSERVE_VERSION);
  for (const auto& s : kSubcommands) std::fprintf(out, "  %-10s %s\n", s.name, s.summary);
  std::fprintf(out, "\n'embedserve <command> --help' explains each command's flags.\n"
                    "  --version  print the version\n  --help     print this help\n");
}

}  // namespace

int main(int argc, char** argv) {
  embedserve::cli::ensure_passive_openmp_wait(argv);
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string first = argv[1];
  if (first == "--version" || first == "version") {
    std::printf("embedserve %s\n", EMBEDSERVE_VERSION);
    return 0;
  }
  if (first == "--help" || first == "-h" || first == "help") {
    print_usage(stdout);
    return 0;
  }
  for (const auto& s : kSubcommands)
    if (first == s.name) return s.run(argc - 2, argv + 2);
  std::fprintf(stderr, "embedserve: unknown command '%s' (see 'embedserve --help')\n", first.c_str());
  return 2;
}
