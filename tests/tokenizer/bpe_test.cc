// BPE merging on a tiny vocabulary: rank order, leftmost tie-break, long words via the heap path.
#include "tokenizer/bpe.h"

#include <gtest/gtest.h>

namespace embedserve::tokenizer {
namespace {

// All 256 single bytes get ids 0..255; merges add tokens from 256 on.
Bpe make(const std::vector<std::pair<std::string, std::string>>& merges,
         std::unordered_map<std::string, int32_t>& vocab) {
  for (int b = 0; b < 256; ++b) vocab.emplace(std::string(1, static_cast<char>(b)), b);
  int32_t next = 256;
  for (const auto& [a, b] : merges) vocab.emplace(a + b, next++);
  auto bpe = Bpe::build(vocab, merges, false);
  EXPECT_TRUE(bpe.ok()) << bpe.status().to_string();
  return std::move(bpe).value();
}

std::vector<int32_t> encode(const Bpe& bpe, std::string_view w) {
  std::vector<int32_t> out;
  bpe.encode_word(w, out);
  return out;
}

TEST(Bpe, MergesLowestRankFirst) {
  std::unordered_map<std::string, int32_t> vocab;
  // "bc" (rank 0) beats "ab" (rank 1) although "ab" is further left.
  Bpe bpe = make({{"b", "c"}, {"a", "b"}, {"a", "bc"}}, vocab);
  EXPECT_EQ(encode(bpe, "abc"), (std::vector<int32_t>{vocab.at("abc")}));
  EXPECT_EQ(encode(bpe, "ab"), (std::vector<int32_t>{vocab.at("ab")}));
  EXPECT_EQ(encode(bpe, "ca"), (std::vector<int32_t>{'c', 'a'}));
}

TEST(Bpe, EqualRanksMergeLeftmostFirst) {
  std::unordered_map<std::string, int32_t> vocab;
  Bpe bpe = make({{"a", "a"}}, vocab);
  const int32_t aa = vocab.at("aa");
  EXPECT_EQ(encode(bpe, "aaa"), (std::vector<int32_t>{aa, 'a'}));
  EXPECT_EQ(encode(bpe, "aaaaa"), (std::vector<int32_t>{aa, aa, 'a'}));
}

TEST(Bpe, LongWordsGiveTheSameResultAsShortOnes) {
  std::unordered_map<std::string, int32_t> vocab;
  Bpe bpe = make({{"a", "b"}, {"ab", "ab"}, {"c", "ab"}}, vocab);
  const std::string unit = "ababcabx";  // the x keeps units from merging with each other
  std::vector<int32_t> unit_ids = encode(bpe, unit);
  std::string long_word;
  std::vector<int32_t> expected;
  for (int i = 0; i < 100; ++i) {  // 800 bytes: the heap path
    long_word += unit;
    expected.insert(expected.end(), unit_ids.begin(), unit_ids.end());
  }
  EXPECT_EQ(unit_ids, (std::vector<int32_t>{vocab.at("abab"), vocab.at("cab"), 'x'}));
  EXPECT_EQ(encode(bpe, long_word), expected);
}

TEST(Bpe, RejectsAVocabularyWithoutEveryByte) {
  std::unordered_map<std::string, int32_t> vocab{{"a", 0}};
  auto bpe = Bpe::build(vocab, {}, false);
  ASSERT_FALSE(bpe.ok());
  EXPECT_EQ(bpe.status().code(), ErrorCode::kUnimplemented);
}

TEST(Bpe, RejectsAMergeOutsideTheVocabulary) {
  std::unordered_map<std::string, int32_t> vocab;
  for (int b = 0; b < 256; ++b) vocab.emplace(std::string(1, static_cast<char>(b)), b);
  auto bpe = Bpe::build(vocab, {{"x", "y"}}, false);  // "xy" is not a token
  ASSERT_FALSE(bpe.ok());
  EXPECT_NE(bpe.status().message().find("merges[0]"), std::string::npos);
}

}  // namespace
}  // namespace embedserve::tokenizer
