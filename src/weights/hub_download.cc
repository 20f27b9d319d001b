// Downloading a repository's needed files into the Hugging Face cache: the hub's revision API says which
// commit and files exist, resolve URLs deliver them, blobs are written as <etag>.incomplete and renamed
// once complete and checked, and snapshots/<commit>/<file> link to them exactly as huggingface_hub does.
#include "weights/hub_download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "weights/hf_cache.h"
#include "weights/json_file.h"
#include "weights/sha256.h"

namespace embedserve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// What the revision API says about one file.
struct RepoFile {
  std::string blob;                   // the cache's blob name: lfs.sha256, else the git blob id
  std::optional<uint64_t> size;
  std::optional<std::string> sha256;  // LFS files only
};

struct RepoInfo {
  std::string commit;
  std::map<std::string, RepoFile> files;
};

// Percent-encodes everything but unreserved characters and those in `safe` (Python's urllib.parse.quote).
std::string url_quote(const std::string& s, const std::string& safe) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || safe.find(static_cast<char>(c)) != std::string::npos) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// huggingface_hub's _normalize_etag: drop a weak-validator prefix and the quotes.
std::string normalize_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

class Downloader {
 public:
  Downloader(HttpClient& http, const HubDownloadRequest& req)
      : http_(http), req_(req), repo_dir_(req.cache_dir / hf_cache::repo_folder_name(req.repo_id)) {}

  StatusOr<fs::path> run() {
    EMBEDSERVE_ASSIGN_OR_RETURN(info_, fetch_repo_info());
    snapshot_ = repo_dir_ / "snapshots" / info_.commit;
    // Recorded first, as huggingface_hub does, so an interrupted download leaves a snapshot whose missing
    // files are named (offline) or fetched (online) on the next run.
    EMBEDSERVE_RETURN_IF_ERROR(write_ref());

    EMBEDSERVE_RETURN_IF_ERROR(required("config.json"));
    EMBEDSERVE_RETURN_IF_ERROR(required("tokenizer.json"));
    for (const char* f : {"tokenizer_config.json", "modules.json", "config_sentence_transformers.json"})
      EMBEDSERVE_RETURN_IF_ERROR(optional(f));
    EMBEDSERVE_RETURN_IF_ERROR(pooling_config());
    EMBEDSERVE_RETURN_IF_ERROR(weights());
    return snapshot_;
  }

 private:
  std::string where() const { return req_.repo_id + " (" + req_.endpoint + ")"; }

  std::vector<std::string> auth_headers() const {
    std::vector<std::string> h;
    if (req_.token) h.push_back("Authorization: Bearer " + *req_.token);
    return h;
  }

  Status http_error(long status, const std::string& url, const std::string& body) const {
    std::string detail = body.empty() ? "" : ": " + body.substr(0, 200);
    if (status == 401 || status == 403)
      return Status(ErrorCode::kPermissionDenied,
                    "the hub refused " + url + " (HTTP " + std::to_string(status) + detail + "); " + req_.repo_id +
                        " does not exist, is private or is gated: check the name" +
                        (req_.token ? ", and that HF_TOKEN has access to it" : ", or set HF_TOKEN to a token with access"));
    if (status == 404)
      return not_found(url + " not found (HTTP 404" + detail + "): check the repository name " + req_.repo_id +
                       " and revision " + req_.revision);
    return unavailable(url + " answered HTTP " + std::to_string(status) + detail);
  }

  StatusOr<RepoInfo> fetch_repo_info() {
    const std::string url = req_.endpoint + "/api/models/" + req_.repo_id + "/revision/" +
                            url_quote(req_.revision, "") + "?blobs=true";
    std::string body;
    auto sink = [&](long, std::string_view chunk) -> Status {
      if (body.size() + chunk.size() > (64u << 20)) return data_loss(url + ": the answer exceeds 64 MB");
      body.append(chunk);
      return Status();
    };
    EMBEDSERVE_ASSIGN_OR_RETURN(HttpResponse r, http_.fetch({url, auth_headers(), false, 0}, sink));
    if (r.status != 200) return http_error(r.status, url, r.error_body);
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return data_loss(url + ": the answer is not JSON");
    RepoInfo info;
    if (!j.contains("sha") || !j["sha"].is_string() || !hf_cache::is_commit_hash(j["sha"].get<std::string>()))
      return data_loss(url + ": the answer has no commit \"sha\" (is HF_ENDPOINT a Hugging Face hub?)");
    info.commit = j["sha"].get<std::string>();
    if (!j.contains("siblings") || !j["siblings"].is_array()) return data_loss(url + ": the answer has no \"siblings\"");
    for (const auto& s : j["siblings"]) {
      if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
      RepoFile f;
      if (s.contains("size") && s["size"].is_number_unsigned()) f.size = s["size"].get<uint64_t>();
      if (s.contains("blobId") && s["blobId"].is_string()) f.blob = s["blobId"].get<std::string>();
      if (auto lfs = s.find("lfs"); lfs != s.end() && lfs->is_object()) {
        if (lfs->contains("sha256") && (*lfs)["sha256"].is_string()) {
          f.sha256 = (*lfs)["sha256"].get<std::string>();
          f.blob = *f.sha256;  // what X-Linked-Etag says, and so the blob name huggingface_hub uses
        }
        if (lfs->contains("size") && (*lfs)["size"].is_number_unsigned()) f.size = (*lfs)["size"].get<uint64_t>();
      }
      info.files[s["rfilename"].get<std::string>()] = std::move(f);
    }
    return info;
  }

  std::string resolve_url(const std::string& file) const {
    return req_.endpoint + "/" + req_.repo_id + "/resolve/" + info_.commit + "/" + url_quote(file, "/");
  }

  // Older hubs and some mirrors leave blob ids out of the API answer; the resolve URL's headers carry them.
  Status fill_blob_name(const std::string& file, RepoFile& f) {
    if (!f.blob.empty()) return Status();
    const std::string url = resolve_url(file);
    // The hub's own answer carries the metadata; a redirect's target (the CDN) need not be asked.
    EMBEDSERVE_ASSIGN_OR_RETURN(HttpResponse r, http_.fetch({url, auth_headers(), true, 0, false}, nullptr));
    if (r.status < 200 || r.status >= 400) return http_error(r.status, url, r.error_body);
    const auto& h = r.first_headers;
    if (auto it = h.find("x-linked-etag"); it != h.end()) {
      // X-Linked-Etag is the LFS object's sha256: check the download against it as well.
      f.blob = normalize_etag(it->second);
      if (f.blob.size() == 64 && is_hex(f.blob)) f.sha256 = f.blob;
    } else if (auto it2 = h.find("etag"); it2 != h.end()) {
      f.blob = normalize_etag(it2->second);
    }
    if (!f.size) {
      if (auto it = h.find("x-linked-size"); it != h.end()) f.size = std::strtoull(it->second.c_str(), nullptr, 10);
    }
    return Status();
  }

  Status required(const std::string& file) {
    if (!info_.files.count(file))
      return not_found(where() + " at commit " + info_.commit + " has no " + file + ", which embedserve needs");
    return fetch(file);
  }

  Status optional(const std::string& file) {
    if (info_.files.count(file)) return fetch(file);
    // huggingface_hub records files a commit lacks, so later lookups need not ask again.
    std::error_code ec;
    const fs::path marker = repo_dir_ / ".no_exist" / info_.commit / file;
    fs::create_directories(marker.parent_path(), ec);
    std::ofstream touch(marker, std::ios::app);
    return Status();
  }

  Status pooling_config() {
    std::string dir = "1_Pooling";
    if (auto modules = json_file::read(snapshot_ / "modules.json"); modules.ok() && modules->is_array()) {
      for (const auto& m : *modules) {
        if (!m.is_object() || !m.contains("type") || !m["type"].is_string() || !m.contains("path") || !m["path"].is_string())
          continue;
        const std::string type = m["type"].get<std::string>();
        if (type.size() >= 8 && type.compare(type.size() - 8, 8, ".Pooling") == 0) dir = m["path"].get<std::string>();
      }
    }
    // The folder comes from a downloaded file: it must stay inside the snapshot.
    if (dir.empty() || dir.front() == '/' || dir.find("..") != std::string::npos)
      return data_loss(req_.repo_id + ": modules.json names the Pooling folder \"" + dir + "\", outside the repository");
    return optional(dir + "/config.json");
  }

  Status weights() {
    if (info_.files.count("model.safetensors")) return fetch("model.safetensors");
    const std::string index = "model.safetensors.index.json";
    if (!info_.files.count(index)) {
      bool bin = info_.files.count("pytorch_model.bin") || info_.files.count("pytorch_model.bin.index.json");
      return not_found(where() + " at commit " + info_.commit + " has no model.safetensors or " + index +
                       (bin ? " (only pytorch_model.bin, which embedserve does not read)" : ""));
    }
    EMBEDSERVE_RETURN_IF_ERROR(fetch(index));
    EMBEDSERVE_ASSIGN_OR_RETURN(json j, json_file::read(snapshot_ / index));
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return data_loss(req_.repo_id + ": " + index + " has no \"weight_map\" object");
    std::set<std::string> shards;
    for (const auto& [name, shard] : j["weight_map"].items()) {
      if (!shard.is_string()) return data_loss(req_.repo_id + ": " + index + " maps " + name + " to a non-string");
      const std::string s = shard.get<std::string>();
      if (s.empty() || s.find('/') != std::string::npos || s == "." || s == "..")
        return data_loss(req_.repo_id + ": " + index + " names shard \"" + s + "\", not a file beside it");
      if (!info_.files.count(s))
        return not_found(where() + ": " + index + " names shard " + s + ", which the repository does not have");
      shards.insert(s);
    }
    for (const auto& s : shards) EMBEDSERVE_RETURN_IF_ERROR(fetch(s));
    return Status();
  }

  // Makes snapshots/<commit>/<file> exist: linked to an existing blob, or downloaded first.
  Status fetch(const std::string& file) {
    std::error_code ec;
    const fs::path link = snapshot_ / file;
    if (fs::exists(link, ec)) return Status();
    RepoFile& f = info_.files[file];
    EMBEDSERVE_RETURN_IF_ERROR(fill_blob_name(file, f));
    // The blob name becomes a path: only hex digests are acceptable.
    if (!is_hex(f.blob) || f.blob.size() > 128)
      return data_loss(req_.repo_id + ": the hub gave " + file + " the malformed blob id \"" + f.blob.substr(0, 80) + "\"");
    const fs::path blob = repo_dir_ / "blobs" / f.blob;
    if (!fs::exists(blob, ec)) {
      EMBEDSERVE_RETURN_IF_ERROR(with_lock(f.blob, [&] { return fs::exists(blob, ec) ? Status() : download(file, f, blob); }));
    }
    return link_blob(link, blob);
  }

  // Serialises writers of one blob across processes, with the lock file huggingface_hub uses (flock).
  Status with_lock(const std::string& blob, const std::function<Status()>& body) {
    const fs::path lock = req_.cache_dir / ".locks" / hf_cache::repo_folder_name(req_.repo_id) / (blob + ".lock");
    std::error_code ec;
    fs::create_directories(lock.parent_path(), ec);
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return io_error(lock.string() + ": cannot create lock file: " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    Status s = body();
    ::flock(fd, LOCK_UN);
    ::close(fd);
    return s;
  }

  void report(const std::string& file, uint64_t done, std::optional<uint64_t> total) const {
    if (req_.on_progress) req_.on_progress({file, done, total.value_or(0)});
  }

  // Fetches `file` into blob.incomplete, resuming what an earlier run left, checks size and sha256, and
  // renames it to `blob`. A transport failure keeps the partial file for the next run.
  Status download(const std::string& file, const RepoFile& f, const fs::path& blob) {
    std::error_code ec;
    fs::create_directories(blob.parent_path(), ec);
    const fs::path part = blob.string() + ".incomplete";
    const std::string url = resolve_url(file);
    for (int attempt = 0; attempt < 2; ++attempt) {
      uint64_t have = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
      if (ec) have = 0;
      if (f.size && have > *f.size) {
        fs::remove(part, ec);
        have = 0;
      }
      // The digest is computed as bytes arrive (hashing runs at ~200 MB/s, so a second pass over a
      // 16 GB checkpoint would add over a minute); a resumed file's kept part is hashed first.
      std::optional<Sha256> hash;
      if (f.sha256) {
        hash.emplace();
        if (have > 0) EMBEDSERVE_RETURN_IF_ERROR(sha256_update_from_file(*hash, part));
      }
      if (!f.size || have < *f.size) {
        std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(part.c_str(), have > 0 ? "ab" : "wb"), &std::fclose);
        if (!out) return io_error(part.string() + ": cannot write: " + std::strerror(errno));
        uint64_t done = have;
        bool first = true;
        auto sink = [&](long status, std::string_view chunk) -> Status {
          if (first) {
            first = false;
            // A server that ignores Range sends the whole file with 200: start over instead of appending.
            if (status == 200 && done > 0) {
              if (std::fflush(out.get()) != 0 || ::ftruncate(::fileno(out.get()), 0) != 0)
                return io_error(part.string() + ": cannot truncate: " + std::strerror(errno));
              std::rewind(out.get());
              done = 0;
              if (hash) hash.emplace();
            }
          }
          if (std::fwrite(chunk.data(), 1, chunk.size(), out.get()) != chunk.size())
            return io_error(part.string() + ": write failed (disk full?): " + std::strerror(errno));
          if (hash) hash->update(chunk);
          done += chunk.size();
          report(file, done, f.size);
          return Status();
        };
        report(file, have, f.size);
        auto r = http_.fetch({url, auth_headers(), false, have}, sink);
        int close_rc = std::fclose(out.release());
        if (!r.ok())
          return r.status().with_context("downloading " + file + " of " + req_.repo_id + " (" +
                                         std::to_string(done) + " bytes kept in " + part.string() +
                                         "; run again to resume)");
        if (close_rc != 0) return io_error(part.string() + ": write failed (disk full?)");
        if (r->status == 416 && attempt == 0) {  // our partial file does not fit the server's: start over
          fs::remove(part, ec);
          continue;
        }
        if (r->status != 200 && r->status != 206) return http_error(r->status, url, r->error_body);
      }
      return finish(file, f, part, blob, hash ? hash->hex_digest() : std::string());
    }
    return unavailable(url + ": the server rejected the resumed download twice");
  }

  Status finish(const std::string& file, const RepoFile& f, const fs::path& part, const fs::path& blob,
                const std::string& actual) {
    std::error_code ec;
    const uint64_t got = fs::file_size(part, ec);
    if (f.size && got != *f.size) {
      fs::remove(part, ec);
      return data_loss("downloaded " + std::to_string(got) + " bytes of " + file + " from " + req_.repo_id +
                       ", the hub says " + std::to_string(*f.size) + "; the partial file was deleted, run again");
    }
    if (f.sha256) {
      if (actual != *f.sha256) {
        fs::remove(part, ec);
        return data_loss("downloaded " + file + " from " + req_.repo_id + " has sha256 " + actual +
                         ", but the hub says " + *f.sha256 + "; the corrupt file was deleted, run again to retry");
      }
    }
    fs::rename(part, blob, ec);
    if (ec) return io_error("cannot rename " + part.string() + " to " + blob.string() + ": " + ec.message());
    return Status();
  }

  // snapshots/<commit>/<file> → ../../blobs/<blob> (one more ../ per folder in file), as huggingface_hub
  // links them; where symlinks are refused (some network filesystems) the blob is copied instead. The link
  // is made under a temporary name and renamed into place, so concurrent downloaders never see a half-made
  // entry and never write through each other's links.
  Status link_blob(const fs::path& link, const fs::path& blob) {
    std::error_code ec;
    fs::create_directories(link.parent_path(), ec);
    if (ec) return io_error("cannot create " + link.parent_path().string() + ": " + ec.message());
    const fs::path tmp = link.string() + ".tmp" + std::to_string(::getpid());
    fs::remove(tmp, ec);
    fs::create_symlink(blob.lexically_relative(link.parent_path()), tmp, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(blob, tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) return io_error("cannot link or copy " + blob.string() + " to " + link.string() + ": " + ec.message());
    }
    fs::rename(tmp, link, ec);
    if (ec) return io_error("cannot create " + link.string() + ": " + ec.message());
    return Status();
  }

  Status write_ref() {
    if (req_.revision == info_.commit) return Status();
    const fs::path ref = repo_dir_ / "refs" / req_.revision;
    std::error_code ec;
    fs::create_directories(ref.parent_path(), ec);
    const fs::path tmp = ref.string() + ".tmp" + std::to_string(::getpid());
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << info_.commit;  // no newline, as huggingface_hub writes it
      if (!out) return io_error(tmp.string() + ": cannot write");
    }
    fs::rename(tmp, ref, ec);
    if (ec) return io_error("cannot write " + ref.string() + ": " + ec.message());
    return Status();
  }

  HttpClient& http_;
  const HubDownloadRequest& req_;
  const fs::path repo_dir_;
  RepoInfo info_;
  fs::path snapshot_;
};

}  // namespace

StatusOr<fs::path> download_snapshot(HttpClient& http, const HubDownloadRequest& request) {
  HubDownloadRequest req = request;
  req.cache_dir = fs::absolute(req.cache_dir).lexically_normal();
  Downloader d(http, req);
  return d.run();
}

}  // namespace embedserve
