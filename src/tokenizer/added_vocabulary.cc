// Added-token matching: a first-byte filter, then the few tokens sharing that byte, longest first.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <cstring>

namespace embedserve::tokenizer {

AddedVocabulary::AddedVocabulary(const std::vector<AddedToken>& tokens) {
  for (const auto& t : tokens) tokens_.push_back({t.content, t.id});
  std::stable_sort(tokens_.begin(), tokens_.end(), [](const Entry& a, const Entry& b) {
    const auto fa = static_cast<unsigned char>(a.content[0]), fb = static_cast<unsigned char>(b.content[0]);
    return fa != fb ? fa < fb : a.content.size() > b.content.size();
  });
  size_t i = 0;
  for (int b = 0; b < 256; ++b) {
    first_byte_[b] = static_cast<uint32_t>(i);
    while (i < tokens_.size() && static_cast<unsigned char>(tokens_[i].content[0]) == b) ++i;
  }
  first_byte_[256] = static_cast<uint32_t>(i);
}

AddedVocabulary::Match AddedVocabulary::find(std::string_view text, size_t from) const {
  for (size_t pos = from; pos < text.size(); ++pos) {
    const auto b = static_cast<unsigned char>(text[pos]);
    for (size_t k = first_byte_[b]; k < first_byte_[b + 1]; ++k) {
      const std::string& c = tokens_[k].content;
      if (text.size() - pos >= c.size() && std::memcmp(text.data() + pos, c.data(), c.size()) == 0)
        return {pos, pos + c.size(), tokens_[k].id};
    }
  }
  return {std::string_view::npos, std::string_view::npos, -1};
}

}  // namespace embedserve::tokenizer
