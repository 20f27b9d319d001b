// GPT-2's byte-level alphabet (bytes_to_unicode) and the UTF-8 repair HF's ByteLevel decoder ends with.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace embedserve::tokenizer {

// byte b -> the code point GPT-2 shows it as: printable Latin-1 maps to itself, the other 68 bytes
// to U+0100.. in order, so every byte is a visible character in vocab and merges.
const std::array<char32_t, 256>& bytes_to_unicode();

// The raw bytes a byte-level token string stands for, or nullopt when some code point of `token`
// is outside the byte alphabet (HF's decoder then keeps such a token's own UTF-8 bytes).
std::optional<std::string> byte_level_to_bytes(std::string_view token);

// Appends `bytes` as UTF-8 with each maximal ill-formed subsequence replaced by U+FFFD, exactly
// as Rust's String::from_utf8_lossy (which HF's ByteLevel decoder uses) does.
void append_utf8_lossy(std::string_view bytes, std::string& out);

}  // namespace embedserve::tokenizer
