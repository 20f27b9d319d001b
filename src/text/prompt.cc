// Prompt choice: instruction template, named prompts, the model's default prompt.
#include "text/prompt.h"

namespace embedserve {
namespace {

std::string prompt_names(const PromptConfig& config) {
  std::string known;
  for (const auto& [name, prefix] : config.prompts) known += (known.empty() ? "" : ", ") + name;
  return known.empty() ? "none" : known;
}

}  // namespace

std::string instruction_prefix(std::string_view task) { return "Instruct: " + std::string(task) + "\nQuery:"; }

StatusOr<std::string> choose_prefix(const PromptChoice& choice, const PromptConfig& config, const OptionNames& names) {
  if (choice.prompt_name && choice.instruction)
    return invalid_argument(names.prompt_name + " and " + names.instruction + " cannot be combined; pick one");
  if (choice.instruction) return instruction_prefix(*choice.instruction);
  const std::optional<std::string>& name = choice.prompt_name ? choice.prompt_name : config.default_prompt_name;
  if (!name) return std::string();
  auto it = config.prompts.find(*name);
  if (it != config.prompts.end()) return it->second;
  if (!choice.prompt_name)  // sentence-transformers refuses such a model at load; say whose mistake it is
    return invalid_argument("the model's config_sentence_transformers.json names default_prompt_name '" + *name +
                            "', which is not one of its prompts (" + prompt_names(config) + "); pass " +
                            names.prompt_name + " to choose one");
  return invalid_argument(names.prompt_name + " '" + *name +
                          "' is not a prompt of the model's config_sentence_transformers.json, which defines: " +
                          prompt_names(config));
}

}  // namespace embedserve
