// NFC: canonical decomposition, canonical ordering, canonical composition (UAX #15), with a quick-check fast path.
#include "tokenizer/nfc.h"

#include <algorithm>
#include <cstdint>
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

namespace {

// NFC of one chunk, appended to `out`. `buf` and `composed` are scratch, reused between chunks.
void append_nfc(std::string_view text, std::vector<char32_t>& buf, std::vector<char32_t>& composed, std::string& out) {
  buf.clear();
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
  composed.clear();
  long starter = -1;
  uint8_t last_cc = 0;
  for (char32_t cp : buf) {
    const uint8_t cc = ucd::combining_class(cp);
    const bool adjacent = starter >= 0 && composed.size() == static_cast<size_t>(starter) + 1;
    if (starter >= 0 && (adjacent || (last_cc != 0 && last_cc < cc))) {
      if (char32_t c = compose(composed[starter], cp)) {
        composed[starter] = c;
        continue;
      }
    }
    if (cc == 0) {
      starter = static_cast<long>(composed.size());
      last_cc = 0;
    } else {
      last_cc = cc;
    }
    composed.push_back(cp);
  }
  for (char32_t cp : composed) append_utf8(cp, out);
}

// Where the chunk that starts at `from` may end: the first code point at or after from + kChunkBytes whose NFC
// quick-check is Yes with combining class 0 (no kNfcCheck bit). Such a code point is a starter that never
// composes with what precedes it and stops canonical reordering, so NFC(a + b) = NFC(a) + NFC(b) when b begins
// with it (UAX #15, "stable code points"): chunks can be normalised one at a time, in bounded scratch memory.
constexpr size_t kChunkBytes = 1 << 16;

size_t chunk_end(std::string_view text, size_t from) {
  size_t i = std::min(text.size(), from + kChunkBytes);
  while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;  // to a code point start
  while (i < text.size()) {
    size_t next = i;
    if (!(ucd::props(decode_utf8(text, next)) & ucd::kNfcCheck)) return i;
    i = next;
  }
  return text.size();
}

}  // namespace

std::string_view to_nfc(std::string_view text, std::string& scratch, size_t max_output) {
  if (is_nfc_quick(text)) return text;
  // The chunk buffers hold at most a chunk's code points (plus its expansion), never the whole text.
  thread_local std::vector<char32_t> buf, composed;
  scratch.clear();
  for (size_t from = 0; from < text.size() && scratch.size() <= max_output;) {
    const size_t end = chunk_end(text, from);
    const std::string_view chunk = text.substr(from, end - from);
    if (is_nfc_quick(chunk)) scratch.append(chunk);
    else append_nfc(chunk, buf, composed, scratch);
    from = end;
  }
  if (buf.capacity() > 4 * kChunkBytes) {  // a chunk with no stable code point was long: give its memory back
    std::vector<char32_t>().swap(buf);
    std::vector<char32_t>().swap(composed);
  }
  return scratch;
}

}  // namespace embedserve::tokenizer
