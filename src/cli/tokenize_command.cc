// embedserve tokenize: JSON Lines {"text": ...} on stdin -> {"ids": [...]} per line on stdout, in order.
#include <charconv>
#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/flags.h"
#include "tokenizer/tokenizer.h"

namespace embedserve::cli {
namespace {

void append_ids_line(const std::vector<int32_t>& ids, std::string& out) {
  out += "{\"ids\":[";
  char buf[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), ids[i]);
    out.append(buf, end);
  }
  out += "]}\n";
}

}  // namespace

int run_tokenize(int argc, char** argv) {
  Flags flags("tokenize",
              "Reads JSON Lines {\"text\": \"...\"} on standard input and writes {\"ids\": [...]} per line on "
              "standard output, in the same order (the ids Hugging Face tokenizers' encode gives).",
              {
                  {"tokenizer", "PATH", "tokenizer.json, or a model directory holding it (required)", ""},
                  {"no-special", "", "do not run the post-processor (no <|endoftext|> appended)", ""},
                  {"max-length", "N", "truncate to at most N ids, the appended special tokens included", ""},
                  {"truncation-side", "SIDE", "right (default: keep the start) or left (keep the end), as HF's "
                   "truncation direction", "right"},
              });
  if (auto done = flags.parse_or_exit(argc, argv)) return *done;
  const auto path = flags.get("tokenizer");
  if (!path) {
    std::fprintf(stderr, "embedserve tokenize: --tokenizer PATH is required (see --help)\n");
    return 2;
  }
  auto max_length = flags.get_int("max-length", 0, 1, 1LL << 31);
  if (!max_length.ok()) {
    std::fprintf(stderr, "embedserve tokenize: %s\n", max_length.status().message().c_str());
    return 2;
  }
  const std::string side = flags.get("truncation-side").value_or("right");
  if (side != "right" && side != "left") {
    std::fprintf(stderr, "embedserve tokenize: --truncation-side must be right or left, got '%s'\n", side.c_str());
    return 2;
  }
  auto tok = Tokenizer::load(*path);
  if (!tok.ok()) {
    std::fprintf(stderr, "embedserve tokenize: %s\n", tok.status().to_string().c_str());
    return 1;
  }
  EncodeOptions options;
  options.add_special_tokens = !flags.get_bool("no-special");
  options.max_length = static_cast<size_t>(*max_length);
  options.truncate_from_front = side == "left";

  std::ios::sync_with_stdio(false);
  std::string line, out;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    // Blank lines are skipped, as `embed` skips them: a trailing empty line or a gap between records is not a text.
    if (line.find_first_not_of(" \t\r\f\v") == std::string::npos) continue;
    auto fail = [&](const std::string& why) {
      std::fwrite(out.data(), 1, out.size(), stdout);  // what came before the bad line is still valid
      std::fflush(stdout);
      std::fprintf(stderr, "embedserve tokenize: line %zu: %s\n", line_no, why.c_str());
      return 1;
    };
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return fail("not valid JSON (or not valid UTF-8); expected {\"text\": \"...\"}");
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
      return fail("expected a JSON object with a string field \"text\"");
    auto ids = (*tok)->encode(j["text"].get_ref<const std::string&>(), options);
    if (!ids.ok()) return fail(ids.status().message());
    append_ids_line(*ids, out);
    if (out.size() > (1 << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace embedserve::cli
