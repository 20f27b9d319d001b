// TextPipeline: prefix + EOS, truncation that keeps the EOS on either side, over-long inputs refused naming the
// limit, ids checked against the embedding table — on a byte encoder, then on the real Qwen3 tokenizer.
#include "text/text_pipeline.h"

#include <gtest/gtest.h>

#include "byte_encoder.h"
#include "text/tokenizer_encoder.h"

namespace embedserve {
namespace {

using Ids = std::vector<int32_t>;
using testing::ByteEncoder;

const OptionNames kNames{"--prompt-name", "--instruction", "--dimensions", "pass --max-length N to truncate"};
constexpr int32_t kEos = ByteEncoder::kEos;

class BytePipeline : public ::testing::Test {
 protected:
  // Limit 8 tokens; vocabulary: the 256 bytes and the EOS (501 rows), so 'a'..'z' and 500 are in the table.
  BytePipeline() : pipeline(encoder, PromptConfig{{{"q", "Q:"}}, std::nullopt}, 8, 501, kNames) {}
  Ids encode(std::string_view prefix, std::string_view text, Truncation t = {}) {
    auto ids = pipeline.encode(prefix, text, t);
    EXPECT_TRUE(ids.ok()) << ids.status().to_string();
    return ids.ok() ? *ids : Ids{};
  }
  ByteEncoder encoder;
  TextPipeline pipeline;
};

TEST_F(BytePipeline, PrefixAndTextAreTokenisedTogetherWithTheEos) {
  EXPECT_EQ(encode("", "ab"), Ids({'a', 'b', kEos}));
  auto prefix = pipeline.prefix({"q", std::nullopt});
  ASSERT_TRUE(prefix.ok());
  EXPECT_EQ(encode(*prefix, "ab"), Ids({'Q', ':', 'a', 'b', kEos}));
  EXPECT_EQ(encode("", ""), Ids({kEos}));  // an empty text still embeds: the EOS alone
}

TEST_F(BytePipeline, OverLongTextIsRefusedNamingTheLimitAndHowToTruncate) {
  EXPECT_EQ(encode("", "abcdefg").size(), 8u);  // exactly the limit is fine
  auto ids = pipeline.encode("", "abcdefgh", {});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(ids.status().message(), "the text has more than 8 tokens, the limit; pass --max-length N to truncate");
}

TEST_F(BytePipeline, TruncationKeepsTheEosOnEitherSide) {
  const std::string text = "abcdefghijkl";
  EXPECT_EQ(encode("", text, {true, false, 0}), Ids({'a', 'b', 'c', 'd', 'e', 'f', 'g', kEos}));
  EXPECT_EQ(encode("", text, {true, true, 0}), Ids({'f', 'g', 'h', 'i', 'j', 'k', 'l', kEos}));
  // A shorter cut (embed's --max-length), and one longer than the limit is held to the limit.
  EXPECT_EQ(encode("", text, {true, false, 3}), Ids({'a', 'b', kEos}));
  EXPECT_EQ(encode("", text, {true, true, 3}), Ids({'k', 'l', kEos}));
  EXPECT_EQ(encode("", text, {true, false, 100}).size(), 8u);
  // The prefix counts against the limit and is cut like the text it is part of.
  EXPECT_EQ(encode("Q:", "abcdefghijkl", {true, false, 4}), Ids({'Q', ':', 'a', kEos}));
  EXPECT_EQ(encode("Q:", "abcdefghijkl", {true, true, 4}), Ids({'j', 'k', 'l', kEos}));
}

TEST_F(BytePipeline, IdsPastTheEmbeddingTableAreRefusedNamingTheToken) {
  const TextPipeline small(encoder, {}, 8, 100, kNames);  // a table of 100 rows: 'd' (100) is the first without one
  auto ids = small.encode("", "abd", {});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ids.status().message(),
            "the text holds token id 100 (d), which has no row in the model's embedding table (vocab_size 100, "
            "ids 0..99); remove it");
}

TEST_F(BytePipeline, ClientIdsAreCheckedAndCutTheSameWay) {
  auto ok = pipeline.check_ids({1, 2, 3}, {});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, Ids({1, 2, 3}));
  for (int32_t bad : {-1, 501, 1 << 30}) {
    auto r = pipeline.check_ids({1, bad}, {});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("the input holds token id " + std::to_string(bad)), std::string::npos)
        << r.status().message();
  }
  const Ids nine = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto too_long = pipeline.check_ids(nine, {});
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), ErrorCode::kOutOfRange);
  EXPECT_EQ(*pipeline.check_ids(nine, {true, false, 0}), Ids({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(*pipeline.check_ids(nine, {true, true, 0}), Ids({2, 3, 4, 5, 6, 7, 8, 9}));
  auto empty = pipeline.check_ids({}, {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "the input has no tokens");
}

TEST_F(BytePipeline, TokenizerErrorsSayItWasTheText) {
  struct Failing : ByteEncoder {
    StatusOr<Ids> encode(std::string_view, bool, const EncodeLimits&) const override { return invalid_argument("bad UTF-8"); }
  } failing;
  const TextPipeline p(failing, {}, 8, 501, kNames);
  auto ids = p.encode("", "x", {});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().message(), "the text: bad UTF-8");
}

// The real tokenizer: the EOS its post-processor appends, truncation that keeps it, and Qwen3's ids past the
// 4B/8B embedding table (151665 rows) named by their text.
class Qwen3Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = Tokenizer::load(std::string(EMBEDSERVE_TEST_DATA_DIR) + "/qwen3-tokenizer");
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    encoder_ = new TokenizerEncoder(std::move(tok).value());
  }
  static void TearDownTestSuite() { delete encoder_; }
  static TokenizerEncoder* encoder_;
};
TokenizerEncoder* Qwen3Pipeline::encoder_ = nullptr;

constexpr int32_t kEndOfText = 151643;  // <|endoftext|>

TEST_F(Qwen3Pipeline, EosIsAppendedAndKeptByTruncation) {
  const TextPipeline p(*encoder_, {}, 32768, 151669, kNames);
  auto ids = p.encode("", "Hello world, this is a test.", {});
  ASSERT_TRUE(ids.ok()) << ids.status().to_string();
  ASSERT_GT(ids->size(), 4u);
  EXPECT_EQ(ids->back(), kEndOfText);
  auto cut = p.encode("", "Hello world, this is a test.", {true, false, 4});
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(*cut, Ids({(*ids)[0], (*ids)[1], (*ids)[2], kEndOfText}));
  auto left = p.encode("", "Hello world, this is a test.", {true, true, 3});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, Ids({(*ids)[ids->size() - 3], (*ids)[ids->size() - 2], kEndOfText}));
}

TEST_F(Qwen3Pipeline, InstructionPrefixMatchesTheSpelledOutQuery) {
  const TextPipeline p(*encoder_, {}, 32768, 151669, kNames);
  auto prefix = p.prefix({std::nullopt, "Given a question, find the answer"});
  ASSERT_TRUE(prefix.ok());
  auto a = p.encode(*prefix, "What is the capital of China?", {});
  auto b = p.encode("", "Instruct: Given a question, find the answer\nQuery:What is the capital of China?", {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST_F(Qwen3Pipeline, ThinkTokenHasNoRowInThe4BTable) {
  const TextPipeline p(*encoder_, {}, 32768, 151665, kNames);
  auto ids = p.encode("", "so <think>hmm</think>", {});
  ASSERT_FALSE(ids.ok());
  EXPECT_NE(ids.status().message().find("token id 151667 (<think>)"), std::string::npos) << ids.status().message();
  EXPECT_NE(ids.status().message().find("vocab_size 151665"), std::string::npos) << ids.status().message();
}

}  // namespace
}  // namespace embedserve
