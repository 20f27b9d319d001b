// HttpClient over libcurl loaded at run time (dlopen): the released binary needs only glibc and libstdc++,
// and libcurl matters only when a model must actually be downloaded.
#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>
#include <mutex>

#include "embedserve/version.h"
#include "weights/http_client.h"

namespace embedserve {

namespace {

// The handful of libcurl entry points used, resolved once per process.
struct CurlApi {
  CURLcode (*global_init)(long) = nullptr;
  CURL* (*easy_init)() = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;
  std::string error;  // why loading failed; empty when the API is usable
};

// Loaded once per process, from `libcurl` (EMBEDSERVE_LIBCURL, as cli/ read it) on the first call.
const CurlApi& curl_api(const std::string& libcurl) {
  static CurlApi api;
  static std::once_flag once;
  std::call_once(once, [&libcurl] {
    // libcurl.so.4 is Debian's libcurl4 (OpenSSL); libcurl-gnutls.so.4 (libcurl3-gnutls) has the same ABI.
    // EMBEDSERVE_LIBCURL names another copy (a libcurl outside the loader's path).
    std::vector<std::string> names = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so"};
    if (!libcurl.empty()) names = {libcurl};
    void* lib = nullptr;
    for (const auto& name : names) {
      if ((lib = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (lib == nullptr) {
      const char* why = ::dlerror();
      api.error = why ? why : "libcurl.so.4 not found";
      return;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (fn == nullptr && api.error.empty()) api.error = std::string("libcurl lacks ") + name;
    };
    sym(api.global_init, "curl_global_init");
    sym(api.easy_init, "curl_easy_init");
    sym(api.easy_setopt, "curl_easy_setopt");
    sym(api.easy_perform, "curl_easy_perform");
    sym(api.easy_getinfo, "curl_easy_getinfo");
    sym(api.easy_cleanup, "curl_easy_cleanup");
    sym(api.easy_strerror, "curl_easy_strerror");
    sym(api.slist_append, "curl_slist_append");
    sym(api.slist_free_all, "curl_slist_free_all");
    if (api.error.empty() && api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) api.error = "curl_global_init failed";
  });
  return api;
}

constexpr size_t kMaxErrorBody = 4096;

struct Transfer {
  const CurlApi* api;
  CURL* curl;
  const HttpBodySink* sink;
  Status sink_status;
  HttpResponse response;
  HttpHeaders current;       // headers of the response being received
  int responses_seen = 0;
};

void finish_headers(Transfer& t) {
  if (t.responses_seen == 1) t.response.first_headers = t.current;
  t.response.headers = t.current;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (after a redirect or a 100 Continue)
    t.current.clear();
    ++t.responses_seen;
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
    t.current.emplace(std::move(name), std::string(value));
  } else if (line == "\r\n" || line == "\n") {
    finish_headers(t);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  long status = 0;
  t.api->easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &status);
  std::string_view chunk(data, size * n);
  if (status < 200 || status >= 300) {
    auto& body = t.response.error_body;
    body.append(chunk.substr(0, kMaxErrorBody - std::min(kMaxErrorBody, body.size())));
    return size * n;
  }
  if (*t.sink) {
    t.sink_status = (*t.sink)(status, chunk);
    if (!t.sink_status.ok()) return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  return size * n;
}

class CurlHttpClient : public HttpClient {
 public:
  explicit CurlHttpClient(const CurlApi& api) : api_(api) {}

  StatusOr<HttpResponse> fetch(const HttpRequest& request, const HttpBodySink& sink) override {
    CURL* curl = api_.easy_init();
    if (curl == nullptr) return internal_error("curl_easy_init failed");
    curl_slist* headers = nullptr;
    for (const auto& h : request.headers) headers = api_.slist_append(headers, h.c_str());
    Transfer t{&api_, curl, &sink, Status(), {}, {}, 0};
    char errbuf[CURL_ERROR_SIZE] = {0};
    const std::string user_agent = std::string("embedserve/") + EMBEDSERVE_VERSION;
    const std::string range = request.range_start > 0 ? std::to_string(request.range_start) + "-" : "";

    api_.easy_setopt(curl, CURLOPT_URL, request.url.c_str());
    api_.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    api_.easy_setopt(curl, CURLOPT_USERAGENT, user_agent.c_str());
    // The hub answers LFS files with a redirect to a CDN. libcurl sends a custom Authorization header only
    // to the original host, so the token never leaks to the CDN.
    api_.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
    api_.easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    api_.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    api_.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 byte/s for a minute) fails instead of hanging forever; it can be resumed.
    api_.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    api_.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    api_.easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    api_.easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
    api_.easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    api_.easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
    api_.easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    if (request.head) api_.easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (!range.empty()) api_.easy_setopt(curl, CURLOPT_RANGE, range.c_str());

    CURLcode rc = api_.easy_perform(curl);
    api_.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.response.status);
    api_.easy_cleanup(curl);
    api_.slist_free_all(headers);

    if (!t.sink_status.ok()) return t.sink_status;
    if (rc != CURLE_OK) {
      std::string detail = errbuf[0] ? errbuf : api_.easy_strerror(rc);
      std::string message = "GET " + request.url + " failed: " + detail + " (curl error " + std::to_string(rc) + ")";
      // The host unknown, the connection refused, or no answer in time: the machine cannot reach the hub at all.
      // Say so, and what works without it, instead of leaving the user with a curl code.
      if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_COULDNT_CONNECT ||
          rc == CURLE_OPERATION_TIMEDOUT)
        message += ": the Hugging Face hub cannot be reached from this machine. Give --model-path a local model "
                   "directory, set HF_ENDPOINT to a mirror this machine reaches, or set HF_HUB_OFFLINE=1 to use only "
                   "models already in the Hugging Face cache";
      return unavailable(message);
    }
    return std::move(t.response);
  }

 private:
  const CurlApi& api_;
};

}  // namespace

StatusOr<std::unique_ptr<HttpClient>> make_curl_http_client(const std::string& why, const std::string& libcurl) {
  const CurlApi& api = curl_api(libcurl);
  if (!api.error.empty())
    return unavailable(why + " needs libcurl (apt-get install libcurl4): " + api.error);
  return std::unique_ptr<HttpClient>(new CurlHttpClient(api));
}

}  // namespace embedserve
