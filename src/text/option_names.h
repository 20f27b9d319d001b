// OptionNames: how a caller spells the text pipeline's knobs, so every error names what its user can change.
#pragma once

#include <string>

namespace embedserve {

// The server's users set JSON fields, `embedserve embed`'s users set flags; the pipeline is shared, so its
// messages take the spelling from the caller instead of naming either.
struct OptionNames {
  std::string prompt_name;    // "--prompt-name" or "'prompt_name'"
  std::string instruction;    // "--instruction" or "'instruction'"
  std::string dimensions;     // "--dimensions" or "'dimensions'"
  std::string truncate_hint;  // how to have an over-long input truncated: "pass --max-length N to truncate"
};

}  // namespace embedserve
