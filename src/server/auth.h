// API-key check for `Authorization: Bearer <key>` (--api-key).
#pragma once

#include <string_view>

namespace embedserve {

// True when `authorization` is "Bearer <key>" (scheme case-insensitive, as RFC 7235 says). The key is
// compared in time independent of where it first differs, so response timing does not leak its prefix.
bool bearer_matches(std::string_view authorization, std::string_view key);

}  // namespace embedserve
