// UTF-8 validation and decoding, shared by the tokenizer, the server and the CLI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace embedserve {

// Returns OK when `text` is well-formed UTF-8 (no overlongs, no surrogates, nothing above
// U+10FFFF); otherwise an invalid_argument naming the byte offset of the first bad sequence.
Status validate_utf8(std::string_view text);

// Decodes one code point at text[pos] of text already validated; advances pos.
char32_t decode_utf8(std::string_view text, size_t& pos);

// Appends the UTF-8 encoding of cp to out.
void append_utf8(char32_t cp, std::string& out);

}  // namespace embedserve
