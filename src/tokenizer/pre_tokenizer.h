// Qwen2's pre-tokenizer regex, hand-written as a scanner over code points with Oniguruma's semantics.
#pragma once

#include <cstddef>
#include <string_view>

namespace embedserve::tokenizer {

// The pattern this scanner implements, exactly as tokenizer.json spells it (Split, behavior Isolated).
inline constexpr std::string_view kQwen2SplitPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

// Returns the end (byte offset) of the piece that starts at `pos` < text.size(). `text` is valid
// UTF-8. Every code point belongs to some alternative, so the pieces tile the text with no gaps,
// and Isolated splitting is just calling this until the end.
size_t qwen2_next_piece(std::string_view text, size_t pos);

}  // namespace embedserve::tokenizer
