// The endpoint handlers. OpenAI-style routes (openai_handlers.cc) and TEI routes (tei_handlers.cc) share
// EmbedService for the embed path; they differ only in how they read the request and write the answer.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "scheduler/job.h"
#include "server/embed_service.h"
#include "server/http_types.h"

namespace embedserve {

struct ServerConfig {
  std::vector<std::string> served_names;  // --served-model-name aliases; the first is the one reported
  // --api-key values; empty: no authentication. Each key owns the files and batches it creates; another key
  // sees none of them.
  std::vector<std::string> api_keys;
  std::vector<std::string> cors_allow_origins;  // empty: no CORS; "*" admits any origin (server/cors.h)
  std::string version;
  size_t max_concurrent_requests = 0;     // reported by /info
  size_t tokenization_workers = 0;        // reported by /info
};

// POST /v1/embeddings. Runs on a worker thread.
void handle_openai_embeddings(const EmbedService& service, const ServerRequest& req, CancelFlag cancel, Respond respond);
// POST /tokenize. Runs on a worker thread.
void handle_tokenize(const EmbedService& service, const ServerRequest& req, Respond respond);
// GET /v1/models: answers from the flags, so it works while the model loads.
ServerResponse models_response(const ServerConfig& config);

// POST /embed (TEI). Runs on a worker thread.
void handle_tei_embed(const EmbedService& service, const ServerRequest& req, CancelFlag cancel, Respond respond);
// GET /info (TEI).
ServerResponse tei_info_response(const EmbedService& service, const ServerConfig& config);

// A 500 naming `model` when a vector holds NaN or Inf (finite weights can still overflow in the forward pass),
// which JSON could only print as null; nullopt when every value is finite.
std::optional<ApiError> non_finite_vector_error(const EmbedOutput& out, const std::string& model);

// The body of a successful /v1/embeddings answer; exposed for tests and the serialisation benchmark.
std::string render_openai_embeddings(const EmbedOutput& out, const std::string& model, bool base64);
// The body of a successful /embed answer: [[f32, ...], ...].
std::string render_tei_embeddings(const EmbedOutput& out);

}  // namespace embedserve
