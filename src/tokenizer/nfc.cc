// NFC: canonical decomposition, canonical ordering, canonical composition (UAX #15), with a quick-check fast path.
#include "tokenizer/nfc.h"

#include <algorithm>
#include <vector>

#include "core/utf8.h"
#include "tokenizer/unicode_tables.h"

namespace embedserve::tokenizer {
namespace {

// Hangul syllables decompose and compose algorithmically (Unicode §3.12), not through the tables.
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (ucd::props(cp) & ucd::kDecomposes) {
    const auto* end = ucd::kDecompositions + ucd::kNumDecompositions;
    const auto* it = std::lower_bound(ucd::kDecompositions, end, cp,
                                      [](const ucd::Decomposition& d, char32_t c) { return d.code_point < c; });
    if (it != end && it->code_point == cp) {
      out.insert(out.end(), ucd::kDecompositionPool + it->offset, ucd::kDecompositionPool + it->offset + it->length);
      return;
    }
  }
  out.push_back(cp);
}

// The primary composite of (first, second), or 0 when there is none.
char32_t compose(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
      second < kTBase + kTCount)
    return first + (second - kTBase);
  const uint64_t key = (static_cast<uint64_t>(first) << 21) | second;
  const auto* end = ucd::kCompositions + ucd::kNumCompositions;
  const auto* it = std::lower_bound(ucd::kCompositions, end, key,
                                    [](const ucd::Composition& c, uint64_t k) { return c.pair < k; });
  return (it != end && it->pair == key) ? it->composite : 0;
}

}  // namespace

bool is_nfc_quick(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (p[i] < 0x80) {  // ASCII is always NFC and never combines with what precedes it
      ++i;
      continue;
    }
    if (ucd::props(decode_utf8(text, i)) & ucd::kNfcCheck) return false;
  }
  return true;
}

std::string_view to_nfc(std::string_view text, std::string& scratch) {
  if (is_nfc_quick(text)) return text;
  std::vector<char32_t> buf;
  buf.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) decompose(decode_utf8(text, i), buf);

  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (size_t i = 0; i < buf.size();) {
    if (ucd::combining_class(buf[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < buf.size() && ucd::combining_class(buf[j]) != 0) ++j;
    std::stable_sort(buf.begin() + i, buf.begin() + j,
                     [](char32_t a, char32_t b) { return ucd::combining_class(a) < ucd::combining_class(b); });
    i = j;
  }

  // Canonical composition. Between the last starter and a candidate, only non-starters that were not
  // composed remain and they are in class order, so the candidate is blocked exactly when the last of
  // them has a class >= its own (or it is itself a starter that is not adjacent).
  std::vector<char32_t> out;
  out.reserve(buf.size());
  long starter = -1;
  uint8_t last_cc = 0;
  for (char32_t cp : buf) {
    const uint8_t cc = ucd::combining_class(cp);
    const bool adjacent = starter >= 0 && out.size() == static_cast<size_t>(starter) + 1;
    if (starter >= 0 && (adjacent || (last_cc != 0 && last_cc < cc))) {
      if (char32_t c = compose(out[starter], cp)) {
        out[starter] = c;
        continue;
      }
    }
    if (cc == 0) {
      starter = static_cast<long>(out.size());
      last_cc = 0;
    } else {
      last_cc = cc;
    }
    out.push_back(cp);
  }
  scratch.clear();
  for (char32_t cp : out) append_utf8(cp, scratch);
  return scratch;
}

}  // namespace embedserve::tokenizer
