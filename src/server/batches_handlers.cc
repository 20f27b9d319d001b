// /v1/batches: create (checks the input file and the endpoint), retrieve, cancel, list — OpenAI's Batch object.
#include <nlohmann/json.hpp>

#include "jobs/batch_runner.h"
#include "jobs/ids.h"
#include "server/errors.h"
#include "server/jobs_handlers.h"
#include "server/jobs_list.h"

namespace embedserve {
namespace {

using nlohmann::json;

ServerResponse json_answer(const json& j) {
  ServerResponse r;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ServerResponse fail(const ApiError& e) { return error_response(e, ErrorShape::kOpenAi); }
ServerResponse fail(const Status& st) { return fail(api_error_from_status(st)); }

ServerResponse batch_not_found(const std::string& id) {
  return fail(ApiError{404, "invalid_request_error", "not_found", "no batch with id '" + id + "'", "batch_id", 0});
}

json optional_time(const std::optional<int64_t>& t) { return t ? json(*t) : json(nullptr); }

json batch_object(const jobs::BatchRecord& b) {
  auto parsed = [](const std::string& text) { return text.empty() ? json(nullptr) : json::parse(text, nullptr, false); };
  return {{"id", b.id},
          {"object", "batch"},
          {"endpoint", b.endpoint},
          {"errors", parsed(b.errors_json)},
          {"input_file_id", b.input_file_id},
          {"completion_window", b.completion_window},
          {"status", b.status},
          {"output_file_id", b.output_file_id.empty() ? json(nullptr) : json(b.output_file_id)},
          {"error_file_id", b.error_file_id.empty() ? json(nullptr) : json(b.error_file_id)},
          {"created_at", b.created_at},
          {"in_progress_at", optional_time(b.in_progress_at)},
          {"expires_at", b.expires_at},
          {"finalizing_at", optional_time(b.finalizing_at)},
          {"completed_at", optional_time(b.completed_at)},
          {"failed_at", optional_time(b.failed_at)},
          {"expired_at", optional_time(b.expired_at)},
          {"cancelling_at", optional_time(b.cancelling_at)},
          {"cancelled_at", optional_time(b.cancelled_at)},
          {"request_counts", {{"total", b.total}, {"completed", b.completed}, {"failed", b.failed}}},
          {"metadata", parsed(b.metadata_json)}};
}

// "24h" as OpenAI takes it; also any whole number of hours or minutes ("1h", "90m"), for shorter windows.
std::optional<int64_t> window_seconds(const std::string& w) {
  if (w.size() < 2 || w.size() > 8) return std::nullopt;
  const char unit = w.back();
  const std::string digits = w.substr(0, w.size() - 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  const int64_t n = std::stoll(digits);
  if (n <= 0) return std::nullopt;
  if (unit == 'h') return n * 3600;
  if (unit == 'm') return n * 60;
  return std::nullopt;
}

}  // namespace

ServerResponse handle_batch_create(const JobsContext& ctx, const ServerRequest& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(bad_request("the request body is not a JSON object", "", "invalid_json"));
  auto string_field = [&](const char* name, std::string& out) -> std::optional<ApiError> {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return bad_request(std::string("'") + name + "' is required", name, "missing_field");
    if (!it->is_string()) return bad_request(std::string("'") + name + "' must be a string", name, "invalid_type");
    out = it->get<std::string>();
    return std::nullopt;
  };
  jobs::BatchRecord b;
  for (auto [name, out] : {std::pair{"input_file_id", &b.input_file_id}, std::pair{"endpoint", &b.endpoint},
                           std::pair{"completion_window", &b.completion_window}})
    if (auto e = string_field(name, *out)) return fail(*e);
  if (b.endpoint != "/v1/embeddings")
    return fail(bad_request("endpoint '" + b.endpoint + "' is not served here; batches run '/v1/embeddings'",
                            "endpoint"));
  const auto window = window_seconds(b.completion_window);
  if (!window)
    return fail(bad_request("completion_window must be '24h' (or another whole number of hours or minutes, e.g. "
                            "'1h'), got '" + b.completion_window + "'", "completion_window"));
  if (auto m = j.find("metadata"); m != j.end() && !m->is_null()) {
    if (!m->is_object() || m->size() > 16)
      return fail(bad_request("metadata must be an object of at most 16 string values", "metadata", "invalid_type"));
    for (const auto& [k, v] : m->items())
      if (!v.is_string() || k.size() > 64 || v.get_ref<const std::string&>().size() > 512)
        return fail(bad_request("metadata values must be strings (keys up to 64 characters, values up to 512)",
                                "metadata", "invalid_type"));
    b.metadata_json = m->dump();
  }
  std::optional<jobs::FileRecord> input;
  if (jobs::well_formed_id(b.input_file_id, "file-")) {
    auto found = ctx.store.get_file(b.input_file_id, req.owner);
    if (!found.ok()) return fail(found.status());
    input = *found;
  }
  if (!input)
    return fail(ApiError{400, "invalid_request_error", "invalid_value",
                         "no file with id '" + b.input_file_id + "': upload it first with POST /v1/files", "input_file_id",
                         0});
  if (input->purpose != "batch")
    return fail(bad_request("the file '" + b.input_file_id + "' has purpose '" + input->purpose +
                            "'; a batch's input must be uploaded with purpose 'batch'", "input_file_id"));
  auto id = jobs::random_id("batch_");
  auto out = jobs::FileStorage::new_storage_name();
  auto err = jobs::FileStorage::new_storage_name();
  for (const Status& st : {id.status(), out.status(), err.status()})
    if (!st.ok()) return fail(st);
  b.id = *id;
  b.owner = req.owner;
  b.status = jobs::kValidating;
  b.created_at = jobs::unix_now();
  b.expires_at = b.created_at + *window;
  b.output_storage = *out;
  b.error_storage = *err;
  if (Status st = ctx.store.insert_batch(b); !st.ok()) return fail(st);
  if (ctx.wake_runner) ctx.wake_runner();
  return json_answer(batch_object(b));
}

ServerResponse handle_batch_get(const JobsContext& ctx, const ServerRequest& req) {
  if (!jobs::well_formed_id(req.path_id, "batch_")) return batch_not_found(req.path_id);
  auto b = ctx.store.get_batch(req.path_id, req.owner);
  if (!b.ok()) return fail(b.status());
  if (!*b) return batch_not_found(req.path_id);
  return json_answer(batch_object(**b));
}

ServerResponse handle_batch_cancel(const JobsContext& ctx, const ServerRequest& req) {
  if (!jobs::well_formed_id(req.path_id, "batch_")) return batch_not_found(req.path_id);
  auto b = ctx.store.request_cancel(req.path_id, req.owner, jobs::unix_now());
  if (!b.ok()) return fail(b.status());
  if (!*b) return batch_not_found(req.path_id);
  const std::string& status = (*b)->status;
  if (status != jobs::kCancelling && status != jobs::kCancelled)
    return fail(ApiError{409, "invalid_request_error", "batch_not_cancellable",
                         "batch '" + req.path_id + "' is " + status + " and can no longer be cancelled", "", 0});
  if (ctx.wake_runner) ctx.wake_runner();
  return json_answer(batch_object(**b));
}

ServerResponse handle_batch_list(const JobsContext& ctx, const ServerRequest& req) {
  const std::string after = query_param(req.query, "after");
  const ListLimit limit = list_limit(req, 20, 100);
  if (limit.error) return fail(*limit.error);
  auto batches = ctx.store.list_batches(req.owner, after, limit.value + 1);
  if (!batches.ok()) return fail(batches.status());
  return json_answer(list_page(std::move(*batches), limit.value, batch_object));
}

}  // namespace embedserve
