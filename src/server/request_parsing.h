// Request parsing: JSON bodies of /v1/embeddings, /embed and /tokenize → plain structs, every schema error
// an ApiError naming the field. Checks that need the model (vocabulary, length, hidden size) come later.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/errors.h"

namespace embedserve {

// One input: text to tokenise, or token ids used as given.
struct EmbedInput {
  bool is_ids = false;
  std::string text;
  std::vector<int32_t> ids;       // all the ids sent, or the first max_ids_per_input of a longer list
  size_t ids_sent = 0;            // how many ids the list held
  std::vector<int32_t> ids_tail;  // the last max_ids_per_input, when the list was longer (for truncation from the front)
};

// The union of what the OpenAI and TEI embedding endpoints can ask for; both share one embed path.
struct EmbedParams {
  std::vector<EmbedInput> inputs;
  std::optional<std::string> model;        // OpenAI only
  std::optional<int64_t> dimensions;       // Matryoshka truncation, within the model's hidden size
  bool base64 = false;                     // encoding_format "base64"
  std::optional<std::string> prompt_name;  // a key of config_sentence_transformers.json "prompts"
  std::optional<std::string> instruction;  // wrapped as "Instruct: {instruction}\nQuery:{text}"
  bool truncate = false;                   // false: an over-long input is a 400
  bool truncate_left = false;              // TEI truncation_direction "Left": keep the end of the text
  std::optional<bool> normalize;           // TEI normalize (default true); unset: as the model's pipeline says
};

struct TokenizeParams {
  std::vector<std::string> texts;
  bool batched = false;  // the input was an array, so the answer is one too
  bool add_special_tokens = true;
  std::optional<std::string> model;
};

// max_ids_per_input (0: no limit) bounds the memory a list of token ids costs: past it only the count and the last
// max_ids_per_input ids are kept, never a DOM node per id (a 57 MiB list of ids once took 1 GB). Long lists of
// strings or of lists are likewise counted past max_inputs, not stored.
// POST /v1/embeddings: input (string | [string] | [int] | [[int]]), model, dimensions (1..max_dimensions, the
// model's hidden size), encoding_format, user, and the extensions prompt_name, instruction, truncate. Unknown
// fields are ignored, as vLLM and SGLang do. Empty strings are refused, as OpenAI refuses them.
std::optional<ApiError> parse_openai_embedding_request(std::string_view body, size_t max_inputs, int64_t max_dimensions,
                                                       EmbedParams& out, size_t max_ids_per_input = 0);
// POST /embed (TEI): inputs, normalize, truncate, truncation_direction, prompt_name, dimensions.
std::optional<ApiError> parse_tei_embed_request(std::string_view body, size_t max_inputs, int64_t max_dimensions,
                                                EmbedParams& out, size_t max_ids_per_input = 0);
// POST /tokenize (SGLang/vLLM shape): prompt (or input) string | [string], add_special_tokens, model.
std::optional<ApiError> parse_tokenize_request(std::string_view body, size_t max_inputs, TokenizeParams& out);

}  // namespace embedserve
