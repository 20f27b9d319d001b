// Counting vectors and reading usage.prompt_tokens from an answer's raw bytes.
#include "answer_check.h"

#include <charconv>
#include <cstring>

namespace embedserve::load {
namespace {

// The position after `key` (quotes included) and any whitespace and one colon, or npos when no colon follows.
size_t value_after_key(std::string_view body, size_t key_end) {
  size_t i = key_end;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) ++i;
  if (i >= body.size() || body[i] != ':') return std::string_view::npos;
  ++i;
  while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) ++i;
  return i;
}

size_t find(std::string_view body, std::string_view needle, size_t from) {
  if (from >= body.size()) return std::string_view::npos;
  const void* hit = memmem(body.data() + from, body.size() - from, needle.data(), needle.size());
  return hit ? static_cast<size_t>(static_cast<const char*>(hit) - body.data()) : std::string_view::npos;
}

}  // namespace

size_t count_embedding_keys(std::string_view body) {
  static constexpr std::string_view kKey = "\"embedding\"";
  size_t count = 0;
  for (size_t at = find(body, kKey, 0); at != std::string_view::npos; at = find(body, kKey, at + kKey.size())) {
    if (value_after_key(body, at + kKey.size()) != std::string_view::npos) ++count;
  }
  return count;
}

std::optional<uint64_t> find_prompt_tokens(std::string_view body) {
  static constexpr std::string_view kKey = "\"prompt_tokens\"";
  // usage comes last in OpenAI's answer: look in the tail first, the whole body only if it is not there.
  const size_t tail = body.size() > 256 ? body.size() - 256 : 0;
  size_t at = find(body, kKey, tail);
  if (at == std::string_view::npos) at = find(body, kKey, 0);
  if (at == std::string_view::npos) return std::nullopt;
  size_t value = value_after_key(body, at + kKey.size());
  if (value == std::string_view::npos) return std::nullopt;
  uint64_t tokens = 0;
  auto [p, ec] = std::from_chars(body.data() + value, body.data() + body.size(), tokens);
  if (ec != std::errc() || p == body.data() + value) return std::nullopt;
  return tokens;
}

}  // namespace embedserve::load
