// /v1/files: upload (multipart streamed to disk), list, retrieve, content (streamed from disk), delete.
#include <cctype>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "jobs/batch_runner.h"
#include "jobs/ids.h"
#include "server/errors.h"
#include "server/jobs_handlers.h"
#include "server/jobs_list.h"
#include "server/multipart.h"

namespace embedserve {
namespace {

using nlohmann::json;

ServerResponse json_answer(const json& j, int status = 200) {
  ServerResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

ServerResponse fail(const ApiError& e) { return error_response(e, ErrorShape::kOpenAi); }

ServerResponse fail(const Status& st, std::string param = "") {
  ApiError e = api_error_from_status(st, std::move(param));
  if (st.code() == ErrorCode::kResourceExhausted) {  // storage, not the queue: retrying soon will not help
    e = {507, "server_error", "storage_full", st.message(), "", 0};
  }
  return fail(e);
}

ServerResponse file_not_found(const std::string& id) {
  return fail(ApiError{404, "invalid_request_error", "not_found", "no file with id '" + id + "'", "file_id", 0});
}

// Removes the streamed body whatever the handler's outcome.
struct RemoveOnExit {
  std::filesystem::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove(path, ec);
  }
};

json file_object(const jobs::FileRecord& f) {
  return {{"id", f.id},
          {"object", "file"},
          {"bytes", f.bytes},
          {"created_at", f.created_at},
          {"expires_at", f.expires_at ? json(*f.expires_at) : json(nullptr)},
          {"filename", f.filename},
          {"purpose", f.purpose},
          {"status", "processed"},
          {"status_details", nullptr}};
}

}  // namespace

std::string query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string out;
      std::string_view v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '+') out += ' ';
        else if (v[i] == '%' && i + 2 < v.size() &&
                 std::isxdigit(static_cast<unsigned char>(v[i + 1])) &&
                 std::isxdigit(static_cast<unsigned char>(v[i + 2]))) {
          out += static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16));
          i += 2;
        } else out += v[i];
      }
      return out;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

ServerResponse handle_file_upload(const JobsContext& ctx, const ServerRequest& req) {
  RemoveOnExit body{req.body_file};
  if (req.body_file.empty())
    return fail(bad_request("upload the file as multipart/form-data with fields 'purpose' and 'file'", "file"));
  auto boundary = multipart_boundary(req.content_type);
  if (!boundary.ok()) return fail(bad_request(boundary.status().message(), "file"));
  auto temp = ctx.storage.temp_path();
  if (!temp.ok()) return fail(temp.status());
  RemoveOnExit part{*temp};
  auto upload = read_multipart_file(req.body_file, *boundary, *temp);
  std::error_code removed;
  std::filesystem::remove(body.path, removed);  // the raw body is done with: the bound below counts the file once
  if (!upload.ok()) return upload.status().code() == ErrorCode::kInvalidArgument
                               ? fail(bad_request(upload.status().message(), "file"))
                               : fail(upload.status());
  const auto purpose = upload->fields.find("purpose");
  if (purpose == upload->fields.end()) return fail(bad_request("the field 'purpose' is required; send 'batch'",
                                                               "purpose", "missing_field"));
  if (purpose->second != "batch")
    return fail(bad_request("purpose '" + purpose->second + "' is not supported here; use 'batch' (the files feed "
                            "POST /v1/batches)", "purpose"));
  if (upload->file_field != "file")
    return fail(bad_request("the file must be sent in the multipart field 'file', not '" + upload->file_field + "'",
                            "file"));
  jobs::FileRecord f;
  f.created_at = jobs::unix_now();
  // OpenAI's expires_after[anchor]=created_at & expires_after[seconds]=N (1 hour to 30 days).
  if (auto s = upload->fields.find("expires_after[seconds]"); s != upload->fields.end()) {
    long long seconds = 0;
    try {
      seconds = std::stoll(s->second);
    } catch (...) {
      seconds = -1;
    }
    if (seconds < 3600 || seconds > 2592000)
      return fail(bad_request("expires_after[seconds] must be an integer from 3600 to 2592000, got '" + s->second + "'",
                              "expires_after"));
    f.expires_at = f.created_at + seconds;
  }
  // The part is on disk already (under tmp/, which the bound counts), so this is the check that it fits.
  if (Status st = ctx.storage.reserve(0); !st.ok()) return fail(st);
  auto id = jobs::random_id("file-");
  auto storage_name = jobs::FileStorage::new_storage_name();
  if (!id.ok() || !storage_name.ok()) return fail(!id.ok() ? id.status() : storage_name.status());
  f.id = *id;
  f.owner = req.owner;
  f.storage_name = *storage_name;
  f.filename = upload->filename.empty() ? "upload.jsonl" : upload->filename;
  f.purpose = "batch";
  f.bytes = static_cast<int64_t>(upload->file_bytes);
  if (Status st = ctx.storage.adopt(*temp, f.storage_name); !st.ok()) return fail(st);
  part.path.clear();
  if (Status st = ctx.store.insert_file(f); !st.ok()) {
    ctx.storage.remove(f.storage_name);
    return fail(st);
  }
  return json_answer(file_object(f));
}

ServerResponse handle_file_list(const JobsContext& ctx, const ServerRequest& req) {
  const std::string purpose = query_param(req.query, "purpose");
  const std::string after = query_param(req.query, "after");
  const ListLimit limit = list_limit(req, 10000, 10000);
  if (limit.error) return fail(*limit.error);
  auto files = ctx.store.list_files(req.owner, purpose, limit.value + 1, after);
  if (!files.ok()) return fail(files.status());
  return json_answer(list_page(std::move(*files), limit.value, file_object));
}

namespace {
StatusOr<std::optional<jobs::FileRecord>> find_file(const JobsContext& ctx, const ServerRequest& req) {
  // A malformed id is never looked up: it cannot name a file.
  if (!jobs::well_formed_id(req.path_id, "file-")) return std::optional<jobs::FileRecord>();
  return ctx.store.get_file(req.path_id, req.owner);
}
}  // namespace

ServerResponse handle_file_get(const JobsContext& ctx, const ServerRequest& req) {
  auto f = find_file(ctx, req);
  if (!f.ok()) return fail(f.status());
  if (!*f) return file_not_found(req.path_id);
  return json_answer(file_object(**f));
}

ServerResponse handle_file_content(const JobsContext& ctx, const ServerRequest& req) {
  auto f = find_file(ctx, req);
  if (!f.ok()) return fail(f.status());
  if (!*f) return file_not_found(req.path_id);
  ServerResponse r;
  r.content_type = "application/octet-stream";
  r.body_file = ctx.storage.path_of((*f)->storage_name).string();
  return r;
}

ServerResponse handle_file_delete(const JobsContext& ctx, const ServerRequest& req) {
  auto f = find_file(ctx, req);
  if (!f.ok()) return fail(f.status());
  if (!*f) return file_not_found(req.path_id);
  auto deleted = ctx.store.delete_file((*f)->id, req.owner);
  if (!deleted.ok()) return fail(deleted.status());
  if (!*deleted) return file_not_found(req.path_id);
  // A download already streaming keeps its open descriptor; the bytes go when it ends.
  ctx.storage.remove((*f)->storage_name);
  return json_answer({{"id", (*f)->id}, {"object", "file"}, {"deleted", true}});
}

}  // namespace embedserve
