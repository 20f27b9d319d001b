// NFC normalisation as HF tokenizers' NFC normaliser does it (Unicode 9.0 data; see unicode/gen_unicode_tables.py).
#pragma once

#include <string>
#include <string_view>

namespace embedserve::tokenizer {

// True when `text` (valid UTF-8) is certainly already NFC: no code point whose NFC quick-check is
// No/Maybe and no non-zero combining class. Most real text passes, and then costs one scan.
bool is_nfc_quick(std::string_view text);

// Returns the NFC form of `text` (valid UTF-8). The view points at `text` itself when the quick check
// passes, otherwise at `scratch`, which receives the normalised text.
std::string_view to_nfc(std::string_view text, std::string& scratch);

}  // namespace embedserve::tokenizer
