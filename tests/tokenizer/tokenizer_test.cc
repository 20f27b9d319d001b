// The Qwen3 tokenizer end to end: ids (from HF tokenizers 0.23.3), special tokens, truncation, decode,
// invalid UTF-8, lookups, and concurrent encode.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace embedserve {
namespace {

const std::string kQwen3 = std::string(EMBEDSERVE_TEST_DATA_DIR) + "/qwen3-tokenizer";
using Ids = std::vector<int32_t>;

class Qwen3Tokenizer : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tok = Tokenizer::load(kQwen3);
    ASSERT_TRUE(tok.ok()) << tok.status().to_string();
    tok_ = std::move(tok).value().release();
  }
  static void TearDownTestSuite() { delete tok_; }
  static Ids encode(std::string_view s, EncodeOptions o = {}) {
    auto ids = tok_->encode(s, o);
    EXPECT_TRUE(ids.ok()) << ids.status().to_string();
    return ids.ok() ? *ids : Ids{};
  }
  static Tokenizer* tok_;
};
Tokenizer* Qwen3Tokenizer::tok_ = nullptr;

TEST_F(Qwen3Tokenizer, EncodesLikeHf) {
  EXPECT_EQ(encode("Hello world"), (Ids{9707, 1879, 151643}));
  EXPECT_EQ(encode("caf\xC3\xA9"), (Ids{924, 58858, 151643}));
  EXPECT_EQ(encode("cafe\xCC\x81"), (Ids{924, 58858, 151643}));  // NFC first: same ids as the composed form
  // 👩‍💻 ok
  EXPECT_EQ(encode("\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x92\xBB ok"), (Ids{145233, 378, 235, 145851, 5394, 151643}));
  EXPECT_EQ(encode(""), (Ids{151643}));
}

TEST_F(Qwen3Tokenizer, AddedTokensAreMatchedInRawText) {
  EXPECT_EQ(encode("<|im_start|>user\nhi<|im_end|>"), (Ids{151644, 872, 198, 6023, 151645, 151643}));
  EXPECT_EQ(encode("<think></think>"), (Ids{151667, 151668, 151643}));
  EXPECT_EQ(encode("Hello world", {.add_special_tokens = false}), (Ids{9707, 1879}));
  EXPECT_EQ(tok_->num_special_tokens_to_add(), 1u);
}

TEST_F(Qwen3Tokenizer, TruncationKeepsTheEos) {
  const std::string s = "hello world how are you <|im_start|> x";
  EXPECT_EQ(encode(s), (Ids{14990, 1879, 1246, 525, 498, 220, 151644, 856, 151643}));
  EXPECT_EQ(encode(s, {.max_length = 1}), (Ids{151643}));
  EXPECT_EQ(encode(s, {.max_length = 3}), (Ids{14990, 1879, 151643}));
  EXPECT_EQ(encode(s, {.add_special_tokens = false, .max_length = 3}), (Ids{14990, 1879, 1246}));
  EXPECT_EQ(encode(s, {.max_length = 100}), encode(s));
}

TEST_F(Qwen3Tokenizer, RefuseAboveIsExactAtTheLimit) {
  for (const std::string s : {"hello world how are you <|im_start|> x", "caf\xC3\xA9 cafe\xCC\x81 ok", "a b"}) {
    const size_t n = encode(s).size();
    EXPECT_EQ(encode(s, {.refuse_above = n}), encode(s)) << s;
    auto over = tok_->encode(s, {.refuse_above = n - 1});
    ASSERT_FALSE(over.ok()) << s;
    EXPECT_EQ(over.status().code(), ErrorCode::kOutOfRange);
    EXPECT_EQ(over.status().message(), "has more than " + std::to_string(n - 1) + " tokens");
  }
  EXPECT_EQ(tok_->max_token_bytes(), 128u);  // 128 spaces, Qwen3's longest token
}

TEST_F(Qwen3Tokenizer, AHugeTextIsRefusedWithoutTokenisingIt) {
  // 20 MB in one word (merging it whole took ~20 s and 1+ GB), the same as non-NFC text, and one just past
  // the bound that needs the tokens counted: each refused in far less time than tokenising would take.
  const std::string word(20'000'000, 'a');
  std::string accents;
  while (accents.size() < 20'000'000) accents += "e\xCC\x81";
  for (const std::string* text : std::initializer_list<const std::string*>{&word, &accents}) {
    const auto start = std::chrono::steady_clock::now();
    auto ids = tok_->encode(*text, {.refuse_above = 32768});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_FALSE(ids.ok());
    EXPECT_EQ(ids.status().code(), ErrorCode::kOutOfRange);
    EXPECT_LT(seconds, 1.0);
  }
  const std::string medium(2'000'000, 'a');  // within 128 bytes per token of 32768 tokens: counted, in windows
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(tok_->encode(medium, {.refuse_above = 32768}).ok());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

TEST_F(Qwen3Tokenizer, ALongWordWithoutLimitsIsMergedWhole) {
  // A word longer than the merge window, with no limit at all: the whole word, once read as a limit of ~2^64
  // ids (an overflow that threw std::length_error).
  const std::string word(10'000, 'a');
  const Ids all = encode(word);
  ASSERT_GT(all.size(), 1000u);
  EXPECT_EQ(encode(word, {.max_length = all.size()}), all);
  EXPECT_EQ(encode(word, {.refuse_above = all.size()}), all);
  Ids head(all.begin(), all.begin() + 99);
  head.push_back(151643);
  EXPECT_EQ(encode(word, {.max_length = 100}), head);
}

TEST_F(Qwen3Tokenizer, TruncationFromTheFrontKeepsTheTailAndTheEos) {
  const std::string s = "hello world how are you <|im_start|> x";
  const Ids all = encode(s, {.add_special_tokens = false});
  for (size_t n = 1; n <= all.size() + 2; ++n) {
    Ids expected(all.end() - static_cast<ptrdiff_t>(std::min(all.size(), n - 1)), all.end());
    expected.push_back(151643);
    EXPECT_EQ(encode(s, {.max_length = n, .truncate_from_front = true}), expected) << n;
  }
}

TEST_F(Qwen3Tokenizer, DecodeRoundTrips) {
  const std::string text = "<|im_start|>user\nhi \xE6\x97\xA5\xE6\x9C\xAC caf\xC3\xA9<|im_end|>";
  const Ids ids = encode(text);
  EXPECT_EQ(tok_->decode(ids).value(), text + "<|endoftext|>");
  EXPECT_EQ(tok_->decode(ids, /*skip_special_tokens=*/true).value(), "user\nhi \xE6\x97\xA5\xE6\x9C\xAC caf\xC3\xA9");
  // <think> is an added token but not special: it survives skip_special_tokens, as in HF.
  EXPECT_EQ(tok_->decode(Ids{151643, 9707, 151668}, true).value(), "Hello</think>");
  // Half of a UTF-8 sequence decodes to U+FFFD, like HF.
  EXPECT_EQ(tok_->decode(Ids{124069}).value(), "\xEF\xBF\xBD");
}

TEST_F(Qwen3Tokenizer, UnknownIdsAreInvalidArguments) {
  for (int32_t id : {-1, 151669, 1 << 30}) {
    auto r = tok_->decode(Ids{id});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(Qwen3Tokenizer, InvalidUtf8IsAnErrorNotACrash) {
  for (std::string_view bad : {"\xFF", "ok\xC3", "\xED\xA0\x80", "\xC0\xAF", "a\x80z"}) {
    auto r = tok_->encode(bad);
    ASSERT_FALSE(r.ok()) << "accepted invalid UTF-8";
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("UTF-8"), std::string::npos);
  }
}

TEST_F(Qwen3Tokenizer, LookupsAndSizes) {
  EXPECT_EQ(tok_->vocab_size(), 151669);
  EXPECT_EQ(tok_->token_to_id("\xC4\xA0world"), 1879);  // "Ġworld"
  EXPECT_EQ(tok_->token_to_id("<|im_end|>"), 151645);
  EXPECT_FALSE(tok_->token_to_id("definitely not a token").has_value());
}

TEST_F(Qwen3Tokenizer, LoadsFromFileOrDirectory) {
  auto tok = Tokenizer::load(kQwen3 + "/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->encode("Hello world").value(), (Ids{9707, 1879, 151643}));
}

TEST_F(Qwen3Tokenizer, ConcurrentEncodeMatchesSerial) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i)
    texts.push_back("line " + std::to_string(i) + ": the quick brown fox \xE6\x97\xA5\xE6\x9C\xAC " + std::string(i % 7, '!'));
  std::vector<Ids> serial;
  for (const auto& t : texts) serial.push_back(encode(t));
  std::vector<std::vector<Ids>> per_thread(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        for (const auto& s : texts) per_thread[t].push_back(tok_->encode(s).value());
    });
  for (auto& th : threads) th.join();
  for (const auto& got : per_thread)
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], serial[i % texts.size()]);
}

}  // namespace
}  // namespace embedserve
