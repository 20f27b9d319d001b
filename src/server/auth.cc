// API-key check: Bearer scheme parsing and a constant-time comparison.
#include "server/auth.h"

#include <boost/uuid/detail/sha1.hpp>
#include <cctype>
#include <cstdio>

namespace embedserve {

bool bearer_matches(std::string_view authorization, std::string_view key) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
  unsigned diff = given.size() == key.size() ? 0u : 1u;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned>(static_cast<unsigned char>(given[i]) ^
                                  static_cast<unsigned char>(key.empty() ? 0 : key[i % key.size()]));
  return diff == 0 && !key.empty();
}

int matching_key(std::string_view authorization, const std::vector<std::string>& keys) {
  int found = -1;
  for (size_t i = 0; i < keys.size(); ++i)
    if (bearer_matches(authorization, keys[i]) && found < 0) found = static_cast<int>(i);
  return found;
}

std::string key_owner(std::string_view key) {
  boost::uuids::detail::sha1 sha;
  sha.process_bytes(key.data(), key.size());
  boost::uuids::detail::sha1::digest_type digest;
  sha.get_digest(digest);
  std::string hex;
  char part[9];
  for (unsigned word : digest) {
    std::snprintf(part, sizeof part, "%08x", word);
    hex += part;
  }
  return hex;
}

}  // namespace embedserve
