// Object ids and storage names for the Files and Batches API: 128 random bits from the kernel, so an id cannot
// be guessed from another one, and storage names that are independent of the ids clients see.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace embedserve::jobs {

// `prefix` followed by 32 lowercase hex digits (128 bits of getrandom(2)), e.g. "file-3f9c...", "batch_3f9c...".
StatusOr<std::string> random_id(std::string_view prefix);

// True when `id` is `prefix` + 32 lowercase hex digits: checked before an id reaches the database, so a
// malformed one is a clear 404 and nothing a client sends is ever more than a key to look up.
bool well_formed_id(std::string_view id, std::string_view prefix);

}  // namespace embedserve::jobs
