// resolve_model_path against fake_hub.py, a hub look-alike on loopback: download into huggingface_hub's
// cache layout, offline reuse, resume after an interrupted transfer, sha256 rejection, HF_HUB_OFFLINE,
// tokens, and reuse of a cache written by hand in huggingface_hub's layout.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "test_files.h"
#include "weights/hf_cache.h"
#include "weights/http_client.h"
#include "weights/model_config.h"
#include "weights/model_source.h"
#include "weights/sentence_transformers_config.h"
#include "weights/sha256.h"
#include "weights/weight_store.h"

extern char** environ;

namespace embedserve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::EnvGuard;
using testing::read_file;
using testing::TempDir;
using testing::write_file;

constexpr const char* kSharded = "tiny-org/tiny-embed";
constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
constexpr const char* kShard2 = "model-00002-of-00002.safetensors";

// The fake hub process, shared by the tests of one process (CTest runs each test in its own).
class FakeHub {
 public:
  FakeHub() {
    // O_CLOEXEC: only the dup2()ed copies reach the child, so when this process ends (even by a crash) the
    // child's stdin reaches EOF and --exit-on-stdin-eof stops it.
    int out_pipe[2], in_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(in_pipe, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
    std::string script = EMBEDSERVE_FAKE_HUB_PY;
    char* argv[] = {const_cast<char*>("python3"), script.data(), const_cast<char*>("--port"), const_cast<char*>("0"),
                    const_cast<char*>("--exit-on-stdin-eof"), nullptr};
    if (posix_spawnp(&pid_, "python3", &actions, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    ::close(in_pipe[0]);
    stdin_ = in_pipe[1];
    FILE* out = ::fdopen(out_pipe[0], "r");
    int port = 0;
    if (out != nullptr && std::fscanf(out, "PORT %d", &port) == 1) url_ = "http://127.0.0.1:" + std::to_string(port);
    if (out != nullptr) std::fclose(out);
  }
  ~FakeHub() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string url_;
};

class HubDownloadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { hub_ = new FakeHub(); }
  static void TearDownTestSuite() {
    delete hub_;
    hub_ = nullptr;
  }

  void SetUp() override {
    ASSERT_FALSE(hub_->url().empty()) << "fake_hub.py did not start (is python3 installed?)";
    auto http = make_curl_http_client("the test");
    ASSERT_TRUE(http.ok()) << http.status().to_string();
    http_ = std::move(*http);
    cache_ = tmp_.path() / "hub";
    env_.set("HF_HUB_CACHE", cache_.c_str());
    env_.set("HF_ENDPOINT", hub_->url().c_str());
    for (const char* v : {"HF_HUB_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HOME", "HF_TOKEN_PATH",
                          "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"})
      env_.set(v, nullptr);
    env_.set("HOME", tmp_.path().c_str());  // no ~/.cache/huggingface/token of the machine's user
    env_.set("no_proxy", "127.0.0.1,localhost");
    control("reset=1");
  }

  json get_json(const std::string& path) {
    std::string body;
    auto r = http_->fetch({hub_->url() + path, {}, false, 0}, [&](long, std::string_view c) {
      body.append(c);
      return Status();
    });
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return json::parse(body, nullptr, false);
  }
  void control(const std::string& query) { get_json("/_control?" + query); }
  // Paths of the files requested since the last reset (API and resolve requests, not CDN ones).
  std::vector<std::string> requested() {
    std::vector<std::string> out;
    for (const auto& r : get_json("/_log")) out.push_back(r["method"].get<std::string>() + " " + r["path"].get<std::string>());
    return out;
  }
  json log() { return get_json("/_log"); }
  std::string commit_of(const std::string& repo) {
    return get_json("/api/models/" + repo + "/revision/main")["sha"].get<std::string>();
  }

  StatusOr<fs::path> resolve(const std::string& id, ModelSourceOptions opts = {}) {
    opts.environment = testing::hub_environment_from_process();  // what env_ set, as cli/ would pass it
    return resolve_model_path(id, opts);
  }

  static FakeHub* hub_;
  TempDir tmp_;
  fs::path cache_;
  EnvGuard env_;
  std::unique_ptr<HttpClient> http_;
};
FakeHub* HubDownloadTest::hub_ = nullptr;

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

TEST_F(HubDownloadTest, DownloadsOnlyNeededFilesIntoHuggingFaceLayout) {
  std::map<std::string, DownloadProgress> last;
  ModelSourceOptions opts;
  opts.on_progress = [&](const DownloadProgress& p) { last[p.file] = p; };
  auto path = resolve(kSharded, opts);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  const std::string commit = commit_of(kSharded);
  const fs::path repo = cache_ / "models--tiny-org--tiny-embed";
  EXPECT_EQ(*path, repo / "snapshots" / commit);
  EXPECT_EQ(read_file(repo / "refs" / "main"), commit);

  const std::vector<std::string> wanted = {"config.json", "tokenizer.json", "tokenizer_config.json", "modules.json",
                                           "config_sentence_transformers.json", "1_Pooling/config.json",
                                           "model.safetensors.index.json", kShard1, kShard2};
  for (const auto& f : wanted) {
    SCOPED_TRACE(f);
    const fs::path link = *path / f;
    ASSERT_TRUE(fs::is_symlink(link));
    const fs::path target = fs::read_symlink(link);
    const std::string up = f == "1_Pooling/config.json" ? "../../../blobs/" : "../../blobs/";
    ASSERT_TRUE(contains(target.string(), up)) << target;
    const std::string blob = target.filename().string();
    ASSERT_TRUE(fs::is_regular_file(repo / "blobs" / blob));
    if (f.ends_with(".safetensors")) {
      EXPECT_EQ(*sha256_file(link), blob);  // LFS blobs are named by their sha256
    } else {
      EXPECT_EQ(blob.size(), 40u);          // other blobs by their git object id
    }
  }
  // Nothing else was fetched: not the README, the .bin or the ONNX export.
  for (const char* f : {"README.md", "pytorch_model.bin", "onnx"}) EXPECT_FALSE(fs::exists(*path / f)) << f;
  for (const auto& r : requested()) {
    EXPECT_FALSE(contains(r, "README") || contains(r, ".bin") || contains(r, "onnx")) << r;
  }
  for (const auto& e : fs::recursive_directory_iterator(cache_))
    EXPECT_FALSE(e.path().string().ends_with(".incomplete")) << e.path();

  // Progress reached the end of each shard.
  for (const char* s : {kShard1, kShard2}) {
    ASSERT_TRUE(last.count(s)) << s;
    EXPECT_EQ(last[s].bytes_done, fs::file_size(*path / s));
    EXPECT_EQ(last[s].bytes_total, last[s].bytes_done);
  }

  // And the result loads.
  auto config = load_model_config(*path / "config.json");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->hidden_size, 32);
  auto st = load_sentence_transformers_config(*path);
  ASSERT_TRUE(st.ok()) << st.status().to_string();
  EXPECT_EQ(st->prompts.at("query"), "Instruct: x\nQuery:");
  auto store = WeightStore::open(*path);
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_TRUE((*store)->get("layers.1.mlp.down_proj.weight", std::vector<int64_t>{32, 48}).ok());
  EXPECT_TRUE((*store)->get("embed_tokens.weight", std::vector<int64_t>{1000, 32}).ok());
}

TEST_F(HubDownloadTest, SecondResolveComesFromTheCacheWithoutNetwork) {
  auto first = resolve(kSharded);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  control("reset=1");
  auto second = resolve(kSharded);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(*first, *second);
  EXPECT_TRUE(requested().empty());
  env_.set("HF_HUB_OFFLINE", "1");
  auto offline = resolve(kSharded);
  ASSERT_TRUE(offline.ok()) << offline.status().to_string();
  EXPECT_EQ(*offline, *first);
}

TEST_F(HubDownloadTest, ResumesAnInterruptedTransfer) {
  control(std::string("truncate=") + kShard1 + "&after=30000");
  auto broken = resolve(kSharded);
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), ErrorCode::kUnavailable) << broken.status().to_string();
  EXPECT_TRUE(contains(broken.status().message(), kShard1)) << broken.status().to_string();
  EXPECT_TRUE(contains(broken.status().message(), "run again to resume")) << broken.status().to_string();

  // The partial blob stays, named by its sha256 with .incomplete.
  const fs::path blobs = cache_ / "models--tiny-org--tiny-embed" / "blobs";
  fs::path part;
  for (const auto& e : fs::directory_iterator(blobs))
    if (e.path().extension() == ".incomplete") part = e.path();
  ASSERT_FALSE(part.empty());
  EXPECT_EQ(fs::file_size(part), 30000u);

  control("reset=1");
  auto resumed = resolve(kSharded);
  ASSERT_TRUE(resumed.ok()) << resumed.status().to_string();
  EXPECT_FALSE(fs::exists(part));
  // The shard was asked for from byte 30000 on, and the small files were not fetched again.
  int shard_requests = 0;
  for (const auto& r : log()) {
    const std::string path = r["path"];
    if (contains(path, kShard1)) {
      ++shard_requests;
      EXPECT_EQ(r["range"], "bytes=30000-");
    }
    EXPECT_FALSE(contains(path, "config.json")) << path;
  }
  EXPECT_EQ(shard_requests, 1);
  EXPECT_EQ(*sha256_file(*resumed / kShard1), fs::read_symlink(*resumed / kShard1).filename().string());
  EXPECT_TRUE(WeightStore::open(*resumed).ok());
}

// A server that ignores Range answers 200 with the whole file: the partial file is restarted, not appended to.
TEST_F(HubDownloadTest, RestartsWhenTheServerIgnoresRange) {
  control(std::string("truncate=") + kShard1 + "&after=30000");
  ASSERT_FALSE(resolve(kSharded).ok());
  control("reset=1");
  control("ignore_range=1");
  auto path = resolve(kSharded);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  bool asked_range = false;
  for (const auto& r : log()) asked_range |= r["range"] == "bytes=30000-";
  EXPECT_TRUE(asked_range);
  EXPECT_EQ(*sha256_file(*path / kShard1), fs::read_symlink(*path / kShard1).filename().string());
}

TEST_F(HubDownloadTest, RejectsAFileWhoseSha256DiffersFromTheHubs) {
  control(std::string("corrupt=") + kShard2);
  auto bad = resolve(kSharded);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kDataLoss) << bad.status().to_string();
  EXPECT_TRUE(contains(bad.status().message(), kShard2)) << bad.status().to_string();
  EXPECT_TRUE(contains(bad.status().message(), "sha256")) << bad.status().to_string();
  const fs::path repo = cache_ / "models--tiny-org--tiny-embed";
  const std::string commit = commit_of(kSharded);
  EXPECT_FALSE(fs::exists(repo / "snapshots" / commit / kShard2));
  for (const auto& e : fs::directory_iterator(repo / "blobs")) {
    EXPECT_NE(e.path().extension(), ".incomplete");
    EXPECT_TRUE(sha256_file(e.path()).ok());
  }
  // Nothing half-done is taken for a model: offline, the cache still lacks the shard.
  env_.set("HF_HUB_OFFLINE", "1");
  auto offline = resolve(kSharded);
  ASSERT_FALSE(offline.ok());
  EXPECT_TRUE(contains(offline.status().message(), kShard2)) << offline.status().to_string();

  env_.set("HF_HUB_OFFLINE", nullptr);
  control("reset=1");
  auto good = resolve(kSharded);
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  for (const auto& r : log()) EXPECT_FALSE(contains(r["path"].get<std::string>(), kShard1)) << "shard 1 fetched twice";
}

TEST_F(HubDownloadTest, OfflineWithAnEmptyCacheIsAClearError) {
  env_.set("HF_HUB_OFFLINE", "1");
  auto r = resolve(kSharded);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(r.status().message(), kSharded)) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "HF_HUB_OFFLINE")) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), cache_.string())) << r.status().to_string();
  EXPECT_TRUE(requested().empty());
}

// A cache laid out by hand exactly as huggingface_hub writes it must be used without any request:
// the endpoint points at a closed port, so any network use would fail.
TEST_F(HubDownloadTest, ReusesACacheInHuggingFaceHubLayout) {
  env_.set("HF_ENDPOINT", "http://127.0.0.1:9");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const fs::path repo = cache_ / "models--Qwen--Qwen3-Embedding-0.6B";
  const fs::path snap = repo / "snapshots" / commit;
  const fs::path configs = fs::path(EMBEDSERVE_TEST_DATA_DIR) / "configs" / "0.6B";
  std::string weights = testing::safetensors_bytes({{"norm.weight", "BF16", {1024}}});
  std::map<std::string, std::string> files = {
      {"config.json", read_file(configs / "config.json")},
      {"modules.json", read_file(configs / "modules.json")},
      {"1_Pooling/config.json", read_file(configs / "1_Pooling" / "config.json")},
      {"tokenizer.json", "{}"},
      {"model.safetensors", weights}};
  for (const auto& [name, content] : files) {
    Sha256 h;
    h.update(content);
    const std::string blob = h.hex_digest();
    write_file(repo / "blobs" / blob, content);
    fs::create_directories((snap / name).parent_path());
    const std::string up = name.find('/') != std::string::npos ? "../../../blobs/" : "../../blobs/";
    fs::create_symlink(up + blob, snap / name);
  }
  write_file(repo / "refs" / "main", commit);

  auto by_branch = resolve("Qwen/Qwen3-Embedding-0.6B");
  ASSERT_TRUE(by_branch.ok()) << by_branch.status().to_string();
  EXPECT_EQ(*by_branch, snap);
  ModelSourceOptions by_commit;
  by_commit.revision = commit;
  auto pinned = resolve("Qwen/Qwen3-Embedding-0.6B", by_commit);
  ASSERT_TRUE(pinned.ok()) << pinned.status().to_string();
  EXPECT_EQ(*pinned, snap);
  auto config = load_model_config(*by_branch / "config.json");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->hidden_size, 1024);
  auto store = WeightStore::open(*by_branch);
  ASSERT_TRUE(store.ok()) << store.status().to_string();

  // An incomplete snapshot is not served; without network the error says what is missing.
  fs::remove(snap / "tokenizer.json");
  auto incomplete = resolve("Qwen/Qwen3-Embedding-0.6B");
  ASSERT_FALSE(incomplete.ok());
  EXPECT_EQ(incomplete.status().code(), ErrorCode::kUnavailable) << incomplete.status().to_string();
  env_.set("HF_HUB_OFFLINE", "1");
  incomplete = resolve("Qwen/Qwen3-Embedding-0.6B");
  ASSERT_FALSE(incomplete.ok());
  EXPECT_TRUE(contains(incomplete.status().message(), "lacks tokenizer.json")) << incomplete.status().to_string();
}

TEST_F(HubDownloadTest, CompletesAPartialSnapshotFetchingOnlyWhatIsMissing) {
  auto first = resolve(kSharded);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  // Another tool's cache might lack a shard: delete its link and blob.
  const fs::path blob = fs::absolute(*first / fs::read_symlink(*first / kShard2));
  fs::remove(blob);
  fs::remove(*first / kShard2);
  control("reset=1");
  auto again = resolve(kSharded);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  std::vector<std::string> files;
  for (const auto& r : log()) {
    const std::string path = r["path"];
    if (contains(path, "/resolve/")) files.push_back(path.substr(path.rfind('/') + 1));
  }
  EXPECT_EQ(files, std::vector<std::string>{kShard2});
  EXPECT_TRUE(fs::exists(blob));
}

TEST_F(HubDownloadTest, SingleFileRepositoryPinnedToACommit) {
  ModelSourceOptions opts;
  opts.revision = commit_of("tiny-org/tiny-single");
  auto path = resolve("tiny-org/tiny-single", opts);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  EXPECT_TRUE(fs::is_symlink(*path / "model.safetensors"));
  EXPECT_FALSE(fs::exists(*path / "model.safetensors.index.json"));
  // A commit needs no ref.
  EXPECT_FALSE(fs::exists(cache_ / "models--tiny-org--tiny-single" / "refs"));
  EXPECT_TRUE(WeightStore::open(*path).ok());
}

// Without blob ids in the API answer the resolve URL's headers (X-Linked-Etag, ETag) name the blobs, as
// huggingface_hub names them, and X-Linked-Etag still guards LFS files with their sha256.
TEST_F(HubDownloadTest, BlobNamesFromResolveHeadersWhenTheApiOmitsThem) {
  auto reference = resolve(kSharded);
  ASSERT_TRUE(reference.ok()) << reference.status().to_string();
  std::map<std::string, std::string> expected;
  for (const auto& e : fs::recursive_directory_iterator(*reference))
    if (e.is_symlink()) expected[e.path().lexically_relative(*reference).string()] = fs::read_symlink(e.path()).filename();

  TempDir other;
  env_.set("HF_HUB_CACHE", (other.path() / "hub").c_str());
  control("hide_blobs=1");
  control(std::string("corrupt=") + kShard2);
  // One HEAD per file to the hub (none to the CDN); the corrupt shard fails its X-Linked-Etag sha256.
  auto heads = [&] {
    int n = 0;
    for (const auto& r : log()) {
      if (r["method"] != "HEAD") continue;
      EXPECT_TRUE(contains(r["path"].get<std::string>(), "/resolve/")) << r["path"];
      ++n;
    }
    return n;
  };
  auto bad = resolve(kSharded);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.status().message(), "sha256")) << bad.status().to_string();
  EXPECT_EQ(heads(), static_cast<int>(expected.size()));
  control("reset=1");
  control("hide_blobs=1");
  auto path = resolve(kSharded);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  EXPECT_EQ(heads(), 1);  // only the shard the failed run did not keep
  for (const auto& [file, blob] : expected) {
    ASSERT_TRUE(fs::is_symlink(*path / file)) << file;
    EXPECT_EQ(fs::read_symlink(*path / file).filename(), blob) << file;
  }
}

// Optional files a repository lacks are recorded under .no_exist/<commit>/ as huggingface_hub records them;
// a missing required file is an error naming it.
TEST_F(HubDownloadTest, AbsentOptionalFilesAreRecordedAbsentRequiredOnesAreErrors) {
  control("drop=config_sentence_transformers.json");
  control("drop=1_Pooling/config.json");
  auto path = resolve(kSharded);
  ASSERT_TRUE(path.ok()) << path.status().to_string();
  const fs::path no_exist = cache_ / "models--tiny-org--tiny-embed" / ".no_exist" / commit_of(kSharded);
  EXPECT_TRUE(fs::is_regular_file(no_exist / "config_sentence_transformers.json"));
  EXPECT_TRUE(fs::is_regular_file(no_exist / "1_Pooling" / "config.json"));
  EXPECT_FALSE(fs::exists(*path / "config_sentence_transformers.json"));

  TempDir other;
  env_.set("HF_HUB_CACHE", (other.path() / "hub").c_str());
  control("drop=tokenizer.json");
  auto r = resolve(kSharded);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "has no tokenizer.json")) << r.status().to_string();
  control("reset=1");
  control(std::string("drop=") + kShard2);
  r = resolve(kSharded);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.status().message(), std::string("names shard ") + kShard2)) << r.status().to_string();
}

TEST_F(HubDownloadTest, PrivateRepositoryNeedsHfToken) {
  auto denied = resolve("tiny-org/private-embed");
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), ErrorCode::kPermissionDenied) << denied.status().to_string();
  EXPECT_TRUE(contains(denied.status().message(), "HF_TOKEN")) << denied.status().to_string();

  env_.set("HF_TOKEN", "secret-token");
  control("reset=1");
  auto ok = resolve("tiny-org/private-embed");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  // The token goes to the hub, never to the CDN host the LFS redirect points at.
  int cdn = 0;
  for (const auto& r : log()) {
    if (contains(r["path"].get<std::string>(), "/_cdn/")) {
      ++cdn;
      EXPECT_TRUE(r["auth"].is_null()) << r["path"];
    } else {
      EXPECT_EQ(r["auth"], "Bearer secret-token") << r["path"];
    }
  }
  EXPECT_EQ(cdn, 1);
}

TEST_F(HubDownloadTest, UnknownRepositoryAndRevision) {
  auto r = resolve("tiny-org/no-such-model");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "tiny-org/no-such-model")) << r.status().to_string();
  ModelSourceOptions opts;
  opts.revision = "v9";
  r = resolve(kSharded, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "v9")) << r.status().to_string();
  opts.revision = "../../etc";
  r = resolve(kSharded, opts);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().to_string();
}

TEST_F(HubDownloadTest, EndpointThatIsNotAHub) {
  env_.set("HF_ENDPOINT", "http://127.0.0.1:9");  // nothing listens on the discard port
  auto r = resolve(kSharded);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "127.0.0.1:9")) << r.status().to_string();
  env_.set("HF_ENDPOINT", "ftp://example.org");
  r = resolve(kSharded);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().to_string();
  EXPECT_TRUE(contains(r.status().message(), "HF_ENDPOINT")) << r.status().to_string();
}

TEST(ModelSourceTest, LocalDirectoriesAndNonIds) {
  TempDir dir;
  write_file(dir / "m" / "config.json", "{}");
  auto ok = resolve_model_path((dir / "m").string(), {});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(*ok, dir / "m");
  fs::create_directories(dir / "empty");
  auto empty = resolve_model_path((dir / "empty").string(), {});
  EXPECT_EQ(empty.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(empty.status().message(), "config.json"));
  auto file = resolve_model_path((dir / "m" / "config.json").string(), {});
  EXPECT_EQ(file.status().code(), ErrorCode::kInvalidArgument);
  auto nothing = resolve_model_path((dir / "nope").string(), {});
  EXPECT_EQ(nothing.status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(contains(nothing.status().message(), "not a hub id"));
  EXPECT_EQ(resolve_model_path("", {}).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace embedserve

namespace embedserve {
namespace {

// A hub that cannot be reached (here: a closed port on loopback) is an error that says so and names the ways out —
// a local directory, HF_ENDPOINT, HF_HUB_OFFLINE — not a bare curl code.
TEST_F(HubDownloadTest, AnUnreachableHubSaysSoAndHowToWorkWithoutIt) {
  env_.set("HF_ENDPOINT", "http://127.0.0.1:9");
  auto r = resolve("tiny-org/not-cached");
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  for (const char* needle : {"cannot be reached", "--model-path", "HF_ENDPOINT", "HF_HUB_OFFLINE"})
    EXPECT_NE(m.find(needle), std::string::npos) << needle << " missing from: " << m;
}

}  // namespace
}  // namespace embedserve
