// Qwen2 split scanner: each alternative of the regex, checked against splits HF tokenizers 0.23.3 makes.
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace embedserve::tokenizer {
namespace {

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < s.size();) {
    const size_t end = qwen2_next_piece(s, pos);
    EXPECT_GT(end, pos) << "the scanner must always advance";
    out.emplace_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Qwen2Split, LettersTakeOneLeadingSpaceOrSymbol) {
  EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("日本語 テキスト"), (V{"日本語", " テキスト"}));
  EXPECT_EQ(split("\t\tfoo"), (V{"\t", "\tfoo"}));
}

TEST(Qwen2Split, ContractionsAreCaseInsensitiveIncludingLongS) {
  EXPECT_EQ(split("I'm HE'LL they'RE"), (V{"I", "'m", " HE", "'LL", " they", "'RE"}));
  // U+017F LATIN SMALL LETTER LONG S case-folds to 's' in Oniguruma.
  EXPECT_EQ(split("\xC5\xBF'\xC5\xBF"), (V{"\xC5\xBF", "'\xC5\xBF"}));
  EXPECT_EQ(split("'x"), (V{"'x"}));  // not a contraction: symbol + letters
}

TEST(Qwen2Split, NumbersAreSingleDigits) {
  EXPECT_EQ(split("abc123"), (V{"abc", "1", "2", "3"}));
  EXPECT_EQ(split("$100.50"), (V{"$", "1", "0", "0", ".", "5", "0"}));
}

TEST(Qwen2Split, SymbolRunsKeepTrailingNewlines) {
  EXPECT_EQ(split("hi!!\n\nyo"), (V{"hi", "!!\n\n", "yo"}));
  EXPECT_EQ(split(" ?!\r\n"), (V{" ?!\r\n"}));
}

TEST(Qwen2Split, WhitespaceLookAheadGivesBackTheLastSpace) {
  EXPECT_EQ(split("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(split("x   "), (V{"x", "   "}));  // at the end of text the whole run stays together
  EXPECT_EQ(split("a\xE3\x80\x80\xE3\x80\x80" "b"), (V{"a", "\xE3\x80\x80", "\xE3\x80\x80" "b"}));  // U+3000 is \s
}

TEST(Qwen2Split, NewlineRunsEndAtTheLastNewline) {
  EXPECT_EQ(split("a \n\n b"), (V{"a", " \n\n", " b"}));
  EXPECT_EQ(split("\n \n  x"), (V{"\n \n", " ", " x"}));
}

}  // namespace
}  // namespace embedserve::tokenizer
