// NFC normalisation as HF tokenizers' NFC normaliser does it (Unicode 9.0 data; see unicode/gen_unicode_tables.py).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace embedserve::tokenizer {

// True when `text` (valid UTF-8) is certainly already NFC: no code point whose NFC quick-check is
// No/Maybe and no non-zero combining class. Most real text passes, and then costs one scan.
bool is_nfc_quick(std::string_view text);

// Returns the NFC form of `text` (valid UTF-8). The view points at `text` itself when the quick check
// passes, otherwise at `scratch`, which receives the normalised text. With max_output, normalisation stops
// once more than max_output bytes are out: a result longer than max_output means "the NFC form is longer
// than that" (its content is then only a prefix), which lets a caller refuse a text without normalising it all.
std::string_view to_nfc(std::string_view text, std::string& scratch, size_t max_output = SIZE_MAX);

}  // namespace embedserve::tokenizer
