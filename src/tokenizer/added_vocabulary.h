// Finds added tokens (<|endoftext|>, <|im_start|>, <think> ...) in raw text, leftmost-longest, as HF does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.h"

namespace embedserve::tokenizer {

class AddedVocabulary {
 public:
  explicit AddedVocabulary(const std::vector<AddedToken>& tokens);

  struct Match {
    size_t begin;  // text.npos when there is no further match
    size_t end;
    int32_t id;
  };
  // The leftmost match at or after `from`; among matches starting there, the longest (HF's
  // aho-corasick MatchKind::LeftmostLongest).
  Match find(std::string_view text, size_t from) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Entry {
    std::string content;
    int32_t id;
  };
  std::vector<Entry> tokens_;                 // sorted by first byte, then longest first
  std::array<uint32_t, 257> first_byte_{};    // tokens_[first_byte_[b] .. first_byte_[b+1]) start with b
};

}  // namespace embedserve::tokenizer
