// Unicode properties the tokenizer needs, generated at build time from the UCD (unicode/gen_unicode_tables.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace embedserve::tokenizer::ucd {

// Bits of kPropsStage2. Letter/Number/Space follow HF's regex engine (Unicode 16.0); NfcCheck and the
// normalisation tables below follow HF's NFC (Unicode 9.0). The generator explains the split.
enum : uint8_t {
  kLetter = 1,    // \p{L}
  kNumber = 2,    // \p{N}
  kSpace = 4,     // \s: the White_Space property (includes \t \n \v \f \r, U+0085, U+00A0, U+3000 ...)
  kNfcCheck = 8,  // NFC_QC is No/Maybe or the combining class is non-zero: text holding it may change
  kDecomposes = 16,  // has a canonical decomposition in kDecompositions (NFC_QC may still be Yes: U+1F81)
};

struct Decomposition {
  uint32_t code_point;
  uint32_t offset;  // into kDecompositionPool
  uint32_t length;
};
struct Composition {
  uint64_t pair;       // (first << 21) | second
  uint32_t composite;
};

extern const uint16_t kPropsStage1[0x1100];
extern const uint8_t kPropsStage2[];
extern const uint16_t kCccStage1[0x1100];
extern const uint8_t kCccStage2[];
extern const uint32_t kDecompositionPool[];
extern const Decomposition kDecompositions[];  // sorted by code_point; full canonical decompositions
extern const size_t kNumDecompositions;
extern const Composition kCompositions[];      // sorted by pair; primary composites only
extern const size_t kNumCompositions;

inline uint8_t props(char32_t cp) { return kPropsStage2[(kPropsStage1[cp >> 8] << 8) | (cp & 0xFF)]; }
inline uint8_t combining_class(char32_t cp) { return kCccStage2[(kCccStage1[cp >> 8] << 8) | (cp & 0xFF)]; }

}  // namespace embedserve::tokenizer::ucd
