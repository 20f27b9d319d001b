// The Files and Batches API routes (/v1/files..., /v1/batches...): OpenAI's object shapes over the jobs
// library's store. Each handler runs on a worker thread and answers synchronously.
#pragma once

#include <cstdint>
#include <functional>

#include "jobs/file_storage.h"
#include "jobs/job_store.h"
#include "server/http_types.h"

namespace embedserve {

struct JobsContext {
  jobs::JobStore& store;
  jobs::FileStorage& storage;
  std::function<void()> wake_runner;  // a batch was created or cancelled
};

// POST /v1/files: the multipart body the HTTP layer streamed to req.body_file (removed here, whatever happens).
ServerResponse handle_file_upload(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_file_list(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_file_get(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_file_content(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_file_delete(const JobsContext& ctx, const ServerRequest& req);

ServerResponse handle_batch_create(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_batch_get(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_batch_cancel(const JobsContext& ctx, const ServerRequest& req);
ServerResponse handle_batch_list(const JobsContext& ctx, const ServerRequest& req);

// The value of `name` in a URL query string (percent-decoded, '+' as space); "" when absent.
std::string query_param(std::string_view query, std::string_view name);

}  // namespace embedserve
