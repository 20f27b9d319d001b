// libFuzzer target: arbitrary bytes into encode (both modes, random max_length, truncation from either side, a
// refusal limit) and arbitrary ids into decode. Besides crashes, leaks and UB (the sanitizers), it checks
// invariants that hold for every input, the bounded modes against the plain encoding of the same text.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tokenizer/nfc.h"
#include "tokenizer/tokenizer.h"

namespace {

const embedserve::Tokenizer& tokenizer() {
  static const embedserve::Tokenizer* tok = [] {
    auto t = embedserve::Tokenizer::load(std::string(EMBEDSERVE_TEST_DATA_DIR) + "/qwen3-tokenizer");
    if (!t.ok()) std::abort();
    return std::move(t).value().release();
  }();
  return *tok;
}

// Qwen3's added tokens (<|endoftext|> ...) are ids 151643 and up, after the BPE vocabulary.
constexpr int32_t kFirstAddedId = 151643;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const embedserve::Tokenizer& tok = tokenizer();
  if (size < 2) return 0;
  embedserve::EncodeOptions options;
  options.add_special_tokens = data[0] & 1;
  options.max_length = (data[0] & 2) ? data[1] % 64 : 0;  // 0: no truncation
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);

  auto ids = tok.encode(text, options);
  if (ids.ok()) {
    for (int32_t id : *ids) check(id >= 0 && id < tok.vocab_size());
    if (options.max_length > 0) check(ids->size() <= std::max(options.max_length, tok.num_special_tokens_to_add()));
    const bool has_added = std::any_of(ids->begin(), ids->end(), [](int32_t id) { return id >= kFirstAddedId; });
    if (!options.add_special_tokens && options.max_length == 0 && !has_added) {
      // Byte-level BPE loses nothing: decoding gives back the normalised text, byte for byte. (With added
      // tokens the text is normalised piecewise around them, so whole-text NFC is not the reference.)
      auto back = tok.decode(*ids);
      check(back.ok());
      std::string scratch;
      check(*back == embedserve::tokenizer::to_nfc(text, scratch));
    }
  }

  // The bounded modes (inputs here are far below their windows, so they must agree exactly): refusing above N
  // gives the plain ids when they number at most N, else out_of_range; truncation keeps the plain content's
  // start (right) or end (left) and the special tokens.
  if (size >= 3) {
    embedserve::EncodeOptions plain;
    plain.add_special_tokens = options.add_special_tokens;
    auto full = tok.encode(text, plain);
    if (full.ok()) {
      embedserve::EncodeOptions refuse = plain;
      refuse.refuse_above = 1 + data[2] % 48;
      auto bounded = tok.encode(text, refuse);
      if (full->size() <= refuse.refuse_above) check(bounded.ok() && *bounded == *full);
      else check(!bounded.ok() && bounded.status().code() == embedserve::ErrorCode::kOutOfRange);

      embedserve::EncodeOptions no_special;
      no_special.add_special_tokens = false;
      auto content = tok.encode(text, no_special);
      check(content.ok());
      const size_t specials = options.add_special_tokens ? tok.num_special_tokens_to_add() : 0;
      embedserve::EncodeOptions cut = plain;
      cut.max_length = 1 + data[2] % 48;
      const size_t keep = cut.max_length > specials ? std::min(cut.max_length - specials, content->size()) : 0;
      for (bool left : {false, true}) {
        cut.truncate_from_front = left;
        auto got = tok.encode(text, cut);
        check(got.ok());
        std::vector<int32_t> want;
        if (left) want.assign(content->end() - static_cast<ptrdiff_t>(keep), content->end());
        else want.assign(content->begin(), content->begin() + static_cast<ptrdiff_t>(keep));
        if (options.add_special_tokens) {
          std::vector<int32_t> eos = *tok.encode("", plain);  // Qwen3's post-processor only appends
          want.insert(want.end(), eos.begin(), eos.end());
        }
        check(*got == want);
      }
    }
  }

  // The same bytes as token ids, some out of range on purpose.
  std::vector<int32_t> raw((size - 2) / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data + 2, raw.size() * 4);
  for (auto& id : raw)
    if (data[1] & 1) id = static_cast<int32_t>(static_cast<uint32_t>(id) % (tok.vocab_size() + 2));
  auto text_back = tok.decode(raw, data[1] & 2);
  if (text_back.ok()) {
    for (int32_t id : raw) check(id >= 0 && id < tok.vocab_size());
  }
  return 0;
}
