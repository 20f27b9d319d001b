// The Qwen2 split regex as a scanner: leftmost-first alternation tried in pattern order, with the
// backtracking of each alternative worked out by hand (comments give the reasoning per alternative).
#include "tokenizer/pre_tokenizer.h"

#include "core/utf8.h"
#include "tokenizer/unicode_tables.h"

namespace embedserve::tokenizer {
namespace {

// A code point with its class bits and the offset just past it.
struct Cp {
  char32_t cp;
  uint8_t props;
  size_t end;
};

inline Cp at(std::string_view s, size_t pos) {
  const auto c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return {c, ucd::props(c), pos + 1};
  size_t p = pos;
  const char32_t cp = decode_utf8(s, p);
  return {cp, ucd::props(cp), p};
}

inline bool is_letter(uint8_t p) { return p & ucd::kLetter; }
inline bool is_number(uint8_t p) { return p & ucd::kNumber; }
inline bool is_space(uint8_t p) { return p & ucd::kSpace; }
inline bool is_other(uint8_t p) { return !(p & (ucd::kLetter | ucd::kNumber | ucd::kSpace)); }
inline bool is_cr_lf(char32_t c) { return c == '\r' || c == '\n'; }

// Case-insensitive match of one contraction letter. Oniguruma's case folding maps only the ASCII
// pair and, for 's', U+017F LATIN SMALL LETTER LONG S (tools/probe_hf_unicode.py checks all code points).
inline bool folds_to(char32_t c, char lower) {
  if (c == static_cast<char32_t>(lower) || c == static_cast<char32_t>(lower - 'a' + 'A')) return true;
  return lower == 's' && c == 0x17F;
}

size_t letters_end(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    const Cp c = at(s, pos);
    if (!is_letter(c.props)) break;
    pos = c.end;
  }
  return pos;
}

// [^\s\p{L}\p{N}]+[\r\n]* from pos (the first code point is known to be "other").
size_t others_then_newlines_end(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    const Cp c = at(s, pos);
    if (!is_other(c.props)) break;
    pos = c.end;
  }
  while (pos < s.size() && (s[pos] == '\r' || s[pos] == '\n')) ++pos;
  return pos;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d) at pos, where s[pos] == '\''. Returns the end or 0.
size_t contraction_end(std::string_view s, size_t pos) {
  const size_t p1 = pos + 1;
  if (p1 >= s.size()) return 0;
  const Cp c1 = at(s, p1);
  if (folds_to(c1.cp, 's') || folds_to(c1.cp, 't') || folds_to(c1.cp, 'm') || folds_to(c1.cp, 'd')) return c1.end;
  if (c1.end >= s.size()) return 0;
  const bool re_ve = folds_to(c1.cp, 'r') || folds_to(c1.cp, 'v');
  const bool ll = folds_to(c1.cp, 'l');
  if (!re_ve && !ll) return 0;
  const Cp c2 = at(s, c1.end);
  if ((re_ve && folds_to(c2.cp, 'e')) || (ll && folds_to(c2.cp, 'l'))) return c2.end;
  return 0;
}

}  // namespace

size_t qwen2_next_piece(std::string_view s, size_t pos) {
  const Cp c0 = at(s, pos);
  const size_t n = s.size();

  // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d)
  if (c0.cp == '\'') {
    if (size_t e = contraction_end(s, pos)) return e;
  }
  // 2. [^\r\n\p{L}\p{N}]?\p{L}+ : a letter run, optionally led by one code point that is neither
  //    CR/LF nor a letter/number (space, punctuation, symbol). When c0 is a letter the optional part
  //    cannot consume it, so the run starts at c0.
  if (is_letter(c0.props)) return letters_end(s, c0.end);
  if (!is_number(c0.props) && !is_cr_lf(c0.cp) && c0.end < n) {
    const Cp c1 = at(s, c0.end);
    if (is_letter(c1.props)) return letters_end(s, c1.end);
  }
  // 3. \p{N}: one number code point at a time.
  if (is_number(c0.props)) return c0.end;
  // 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*' : an optional U+0020 only if an "other" follows it (otherwise the
  //    optional part backtracks to empty and the space itself fails the class).
  if (c0.cp == ' ' && c0.end < n) {
    const Cp c1 = at(s, c0.end);
    if (is_other(c1.props)) return others_then_newlines_end(s, c0.end);
  }
  if (is_other(c0.props)) return others_then_newlines_end(s, pos);

  // c0 is whitespace (\s includes CR and LF). Measure the maximal whitespace run.
  size_t run_end = pos;
  size_t last_ws_start = pos;  // start of the run's last code point
  size_t after_last_crlf = 0;  // end of the run's last CR/LF, 0 when the run has none
  size_t count = 0;
  while (run_end < n) {
    const Cp c = at(s, run_end);
    if (!is_space(c.props)) break;
    last_ws_start = run_end;
    if (is_cr_lf(c.cp)) after_last_crlf = c.end;
    run_end = c.end;
    ++count;
  }
  // 5. \s*[\r\n]+ : greedy \s* gives back until [\r\n]+ can match, i.e. the match ends just after
  //    the run's last CR/LF (which [\r\n]+ cannot extend: the next code point is not CR/LF).
  if (after_last_crlf != 0) return after_last_crlf;
  // 6. \s+(?!\S) : the whole run at the end of text; otherwise the run minus its last code point,
  //    which then is whitespace and satisfies the look-ahead (needs a run of two or more).
  if (run_end == n) return run_end;
  if (count >= 2) return last_ws_start;
  // 7. \s+
  return run_end;
}

}  // namespace embedserve::tokenizer
