// What a load run checks in an embeddings answer without parsing its JSON: how many vectors it holds and the
// prompt tokens it reports (OpenAI's shape, as embedserve, vLLM, SGLang and TEI's /v1 route write it).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace embedserve::load {

// The number of "embedding" keys: one per vector in OpenAI's {"data": [{"object": "embedding", "embedding": ...}]}
// ("embedding" as the object's value is not followed by a colon, so it is not counted). A base64 or float vector
// holds no quote, so the scan skips through it at memchr speed; a parse of a 64-vector float answer would not.
size_t count_embedding_keys(std::string_view body);

// usage.prompt_tokens, when the body has a "prompt_tokens" key with a whole number.
std::optional<uint64_t> find_prompt_tokens(std::string_view body);

}  // namespace embedserve::load
