// API-key check for `Authorization: Bearer <key>` (--api-key).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace embedserve {

// True when `authorization` is "Bearer <key>" (scheme case-insensitive, as RFC 7235 says). The key is
// compared in time independent of where it first differs, so response timing does not leak its prefix.
bool bearer_matches(std::string_view authorization, std::string_view key);

// The index in `keys` of the key `authorization` carries; -1 when none matches. Every key is compared, so the
// time taken does not say which one matched.
int matching_key(std::string_view authorization, const std::vector<std::string>& keys);

// The owner recorded on files and batches a key creates: SHA-1 of the key in hex, so the database never holds a
// key, and a key listed again after a restart (in any order) still owns its objects.
std::string key_owner(std::string_view key);

}  // namespace embedserve
