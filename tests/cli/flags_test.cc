// The flag parser: --name value and --name=value, aliases stored under their flag's name, errors that name
// the spelling the user typed, and --help listing the aliases.
#include "cli/flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace embedserve::cli {
namespace {

Flags make() {
  return Flags("embed", "test command",
               {{"max-num-batched-tokens", "N", "token budget of one engine call", "16384", false, {"batch-tokens"}},
                {"model-path", "PATH", "model directory", ""},
                {"verbose", "", "say more", ""}});
}

Status parse(Flags& f, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return f.parse(static_cast<int>(argv.size()), argv.data());
}

TEST(Flags, AnAliasSetsItsFlag) {
  Flags f = make();
  ASSERT_TRUE(parse(f, {"--batch-tokens", "64"}).ok());
  EXPECT_TRUE(f.has("max-num-batched-tokens"));
  EXPECT_EQ(*f.get_int("max-num-batched-tokens", 0, 1, 1 << 24), 64);
  Flags g = make();
  ASSERT_TRUE(parse(g, {"--batch_tokens=32"}).ok());  // underscores and = work for aliases too
  EXPECT_EQ(*g.get_int("max-num-batched-tokens", 0, 1, 1 << 24), 32);
  Flags h = make();
  ASSERT_TRUE(parse(h, {"--batch-tokens", "8", "--max-num-batched-tokens", "16"}).ok());  // the last one wins
  EXPECT_EQ(*h.get_int("max-num-batched-tokens", 0, 1, 1 << 24), 16);
}

TEST(Flags, ErrorsNameTheSpellingTyped) {
  Flags f = make();
  ASSERT_TRUE(parse(f, {"--batch-tokens", "0"}).ok());
  auto v = f.get_int("max-num-batched-tokens", 0, 1, 1 << 24);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().message(), "--batch-tokens must be between 1 and 16777216, got 0");
  Flags g = make();
  ASSERT_TRUE(parse(g, {"--max-num-batched-tokens", "x"}).ok());
  EXPECT_EQ(g.get_int("max-num-batched-tokens", 0, 1, 10).status().message(),
            "--max-num-batched-tokens expects a whole number, got 'x'");
  Flags h = make();
  EXPECT_EQ(parse(h, {"--batch-tokens"}).message(), "flag --batch-tokens needs a value (N)");
  EXPECT_EQ(parse(h, {"--max-batch-tokens", "4"}).message(),
            "unknown flag --max-batch-tokens (see 'embedserve embed --help')");
}

TEST(Flags, DefaultsAndSwitches) {
  Flags f = make();
  ASSERT_TRUE(parse(f, {"--verbose"}).ok());
  EXPECT_TRUE(f.get_bool("verbose"));
  EXPECT_EQ(f.get("max-num-batched-tokens"), "16384");
  EXPECT_FALSE(f.get("model-path").has_value());
  EXPECT_EQ(parse(f, {"--verbose=yes"}).message(), "flag --verbose takes no value");
}

TEST(Flags, HelpListsTheAliases) {
  const std::string help = make().help_text();
  EXPECT_NE(help.find("  --max-num-batched-tokens N      token budget of one engine call (default: 16384) "
                      "(also --batch-tokens)\n"),
            std::string::npos)
      << help;
  EXPECT_NE(help.find("  -h, --help"), std::string::npos);
}

}  // namespace
}  // namespace embedserve::cli
