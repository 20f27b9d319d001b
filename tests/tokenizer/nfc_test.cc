// NFC normaliser: composition, reordering, Hangul, singletons, and HF's Unicode 9.0 cut-off.
#include "tokenizer/nfc.h"

#include <gtest/gtest.h>

#include <string>

namespace embedserve::tokenizer {
namespace {

std::string nfc(std::string_view s) {
  std::string scratch;
  return std::string(to_nfc(s, scratch));
}

TEST(Nfc, AlreadyNormalTextTakesTheFastPath) {
  EXPECT_TRUE(is_nfc_quick("plain ASCII"));
  EXPECT_TRUE(is_nfc_quick("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC"));  // café 日本
  std::string scratch = "untouched";
  const std::string_view in = "caf\xC3\xA9";
  EXPECT_EQ(to_nfc(in, scratch).data(), in.data());  // no copy when already NFC
  EXPECT_FALSE(is_nfc_quick("e\xCC\x81"));           // e + U+0301
}

TEST(Nfc, ComposesBaseAndMark) { EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9"); }

TEST(Nfc, ReordersMarksByCombiningClassThenComposes) {
  // U+1E0B U+0323 (d with dot above, dot below) -> U+1E0D U+0307
  EXPECT_EQ(nfc("\xE1\xB8\x8B\xCC\xA3"), "\xE1\xB8\x8D\xCC\x87");
  // a U+0316 (ccc 220) U+0301 (230): the acute is not blocked -> U+00E1 U+0316
  EXPECT_EQ(nfc("a\xCC\x96\xCC\x81"), "\xC3\xA1\xCC\x96");
}

TEST(Nfc, DecomposesCharactersWhoseQuickCheckIsYes) {
  // U+1F81 is NFC_QC=Yes but must be decomposed when a mark follows: U+1F81 U+0301 -> U+1F85
  EXPECT_EQ(nfc("\xE1\xBE\x81\xCC\x81"), "\xE1\xBE\x85");
}

TEST(Nfc, HangulJamoCompose) {
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // U+1100 U+1161 U+11A8 -> U+AC01
}

TEST(Nfc, SingletonsMapAway) { EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85"); }  // ANGSTROM SIGN -> Å

TEST(Nfc, CharactersNewerThanUnicode9AreLeftAsStarters) {
  // U+07FD (Unicode 11, ccc 220) before U+093C (ccc 7): HF's NFC does not know U+07FD, treats it as a
  // starter, and so does not reorder (a Unicode 15 NFC would give U+093C U+07FD).
  EXPECT_EQ(nfc("\xDF\xBD\xE0\xA4\xBC"), "\xDF\xBD\xE0\xA4\xBC");
}

}  // namespace
}  // namespace embedserve::tokenizer
