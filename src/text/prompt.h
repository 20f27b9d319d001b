// Prompt choice: the text put before every input of a request or file — one of the model's named prompts
// (config_sentence_transformers.json) or Qwen3-Embedding's instruction template.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "text/option_names.h"

namespace embedserve {

// What config_sentence_transformers.json says about prompts.
struct PromptConfig {
  std::map<std::string, std::string> prompts;      // "prompts": name → prefix ("query" → "Instruct: ...\nQuery:")
  std::optional<std::string> default_prompt_name;  // applies when the caller names neither a prompt nor an instruction
};

// What the caller asked for: at most one of the two.
struct PromptChoice {
  std::optional<std::string> prompt_name;
  std::optional<std::string> instruction;
  bool given() const { return prompt_name.has_value() || instruction.has_value(); }
};

// Qwen3-Embedding's query format (its model card, and the "query" prompt it ships):
// "Instruct: {task}\nQuery:", the text following with no space.
std::string instruction_prefix(std::string_view task);

// The prefix for every text: the instruction's, else the named prompt, else the default prompt, else "".
// Errors (invalid_argument): both given; a name the model does not define (the message lists those it does).
StatusOr<std::string> choose_prefix(const PromptChoice& choice, const PromptConfig& config, const OptionNames& names);

}  // namespace embedserve
