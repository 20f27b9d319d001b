// GPT-2 byte alphabet and lossy UTF-8 repair (Rust's from_utf8_lossy semantics).
#include "tokenizer/byte_level.h"

#include <gtest/gtest.h>

#include <set>

namespace embedserve::tokenizer {
namespace {

TEST(ByteLevel, AlphabetIsABijectionOntoVisibleCharacters) {
  const auto& t = bytes_to_unicode();
  std::set<char32_t> seen(t.begin(), t.end());
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(t[' '], U'\u0120');  // 'Ġ'
  EXPECT_EQ(t['\n'], U'\u010A');  // 'Ċ'
  EXPECT_EQ(t['a'], U'a');
}

TEST(ByteLevel, TokenStringsMapBackToBytes) {
  EXPECT_EQ(byte_level_to_bytes("\xC4\xA0world").value(), " world");
  EXPECT_FALSE(byte_level_to_bytes("\xE6\x97\xA5").has_value());  // 日 is not in the alphabet
}

std::string lossy(std::string_view s) {
  std::string out;
  append_utf8_lossy(s, out);
  return out;
}

TEST(ByteLevel, LossyUtf8ReplacesMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(lossy("\xE6\x97"), r);                 // truncated 3-byte sequence: one replacement
  EXPECT_EQ(lossy("\xE6\x97x"), r + "x");
  EXPECT_EQ(lossy("\x80\x80"), r + r);             // lone continuation bytes: one each
  EXPECT_EQ(lossy("\xED\xA0\x80"), r + r + r);     // surrogate: E D is valid only with 80..9F next
  EXPECT_EQ(lossy("\xF0\x9F\x98"), r);             // truncated emoji
  EXPECT_EQ(lossy("\xC0\xAF"), r + r);             // overlong lead bytes never start a sequence
}

}  // namespace
}  // namespace embedserve::tokenizer
