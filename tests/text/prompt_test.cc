// Prompt choice: Qwen3-Embedding's instruction template, named and default prompts, and errors that name
// the knobs as the caller spells them.
#include "text/prompt.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

const OptionNames kNames{"--prompt-name", "--instruction", "--dimensions", "pass --max-length N to truncate"};

PromptConfig qwen3_prompts(std::optional<std::string> default_name = std::nullopt) {
  // What Qwen3-Embedding's config_sentence_transformers.json ships.
  return {{{"query", "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"},
           {"document", ""}},
          std::move(default_name)};
}

TEST(Prompt, InstructionUsesQwen3QueryFormat) {
  EXPECT_EQ(instruction_prefix("Find the answer"), "Instruct: Find the answer\nQuery:");
  auto p = choose_prefix({std::nullopt, "Given a web search query, retrieve relevant passages that answer the query"},
                         qwen3_prompts(), kNames);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  // The same text as the model's own "query" prompt: the two ways of asking agree.
  EXPECT_EQ(*p, qwen3_prompts().prompts.at("query"));
}

TEST(Prompt, NamedPromptThenDefaultThenNothing) {
  EXPECT_EQ(*choose_prefix({"query", std::nullopt}, qwen3_prompts(), kNames), qwen3_prompts().prompts.at("query"));
  EXPECT_EQ(*choose_prefix({"document", std::nullopt}, qwen3_prompts("query"), kNames), "");
  EXPECT_EQ(*choose_prefix({}, qwen3_prompts("query"), kNames), qwen3_prompts().prompts.at("query"));
  EXPECT_EQ(*choose_prefix({}, qwen3_prompts(), kNames), "");
  // An instruction overrides the default prompt.
  EXPECT_EQ(*choose_prefix({std::nullopt, "x"}, qwen3_prompts("query"), kNames), "Instruct: x\nQuery:");
}

TEST(Prompt, ErrorsNameTheCallersSpelling) {
  auto both = choose_prefix({"query", "x"}, qwen3_prompts(), kNames);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(both.status().message(), "--prompt-name and --instruction cannot be combined; pick one");

  const OptionNames fields{"'prompt_name'", "'instruction'", "'dimensions'", "pass \"truncate\": true"};
  auto unknown = choose_prefix({"nope", std::nullopt}, qwen3_prompts(), fields);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message(),
            "'prompt_name' 'nope' is not a prompt of the model's config_sentence_transformers.json, which defines: "
            "document, query");
  auto none = choose_prefix({"query", std::nullopt}, PromptConfig{}, kNames);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("which defines: none"), std::string::npos) << none.status().message();
}

TEST(Prompt, ADefaultNameWithoutItsPromptBlamesTheModelFile) {
  auto p = choose_prefix({}, qwen3_prompts("passage"), kNames);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("default_prompt_name 'passage'"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("--prompt-name"), std::string::npos) << p.status().message();
}

}  // namespace
}  // namespace embedserve
