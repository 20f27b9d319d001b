// The subcommands of the embedserve binary; each lives in its own file and owns its flags.
#pragma once

namespace embedserve::cli {

// Each takes argv after the subcommand name and returns the process exit code.
int run_tokenize(int argc, char** argv);  // tokenize_command.cc
int run_embed(int argc, char** argv);     // embed_command.cc
int run_serve(int argc, char** argv);     // serve_command.cc
int run_bench(int argc, char** argv);     // bench_command.cc

}  // namespace embedserve::cli
