// Standard base64 (RFC 4648, with padding): the wire form of encoding_format "base64".
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedserve {

// Appends the base64 text of `bytes` to `out`.
void base64_encode(std::span<const unsigned char> bytes, std::string& out);
// Appends the little-endian float32 bytes of `values`, base64-encoded, as the openai client decodes them
// (numpy.frombuffer(base64.b64decode(s), dtype="float32")).
void base64_encode_floats(std::span<const float> values, std::string& out);
// Decodes padded standard base64; nullopt on any malformed input. Used by tests and tools.
std::optional<std::vector<unsigned char>> base64_decode(std::string_view text);

}  // namespace embedserve
