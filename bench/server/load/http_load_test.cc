// Tests of embedserve_http_load's parts: the histogram, the response reader, the answer checks, the request file,
// and one worker against a scripted server on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "answer_check.h"
#include "http_response.h"
#include "latency_histogram.h"
#include "load_report.h"
#include "load_worker.h"
#include "request_set.h"

namespace embedserve::load {
namespace {

TEST(LatencyHistogram, SmallValuesAreExactAndBucketsTileTheRange) {
  for (uint64_t v = 0; v < 256; ++v) EXPECT_EQ(LatencyHistogram::highest_in_bucket(LatencyHistogram::bucket_of(v)), v);
  // Every bucket starts right after the previous one ends: no value falls between two buckets.
  for (size_t b = 1; b < LatencyHistogram::kBuckets; ++b) {
    const uint64_t first = LatencyHistogram::highest_in_bucket(b - 1) + 1;
    ASSERT_EQ(LatencyHistogram::bucket_of(first), b) << "bucket " << b;
  }
  EXPECT_EQ(LatencyHistogram::bucket_of(UINT64_MAX), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, BucketsAreWithinTheirRelativeError) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t v = rng() >> (rng() % 60);
    const uint64_t high = LatencyHistogram::highest_in_bucket(LatencyHistogram::bucket_of(v));
    ASSERT_GE(high, v);
    ASSERT_LE(static_cast<double>(high - v), static_cast<double>(v) / 128.0) << v;
  }
}

TEST(LatencyHistogram, PercentilesOfAKnownDistribution) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0u);
  for (uint64_t us = 1; us <= 10000; ++us) h.record(us * 1000);  // 1 µs .. 10 ms, in ns
  EXPECT_EQ(h.count(), 10000u);
  auto near = [](uint64_t got, double want) { return std::abs(static_cast<double>(got) - want) <= want / 128.0; };
  EXPECT_TRUE(near(h.percentile(0.50), 5000e3)) << h.percentile(0.50);
  EXPECT_TRUE(near(h.percentile(0.90), 9000e3)) << h.percentile(0.90);
  EXPECT_TRUE(near(h.percentile(0.99), 9900e3)) << h.percentile(0.99);
  EXPECT_TRUE(near(h.percentile(0.999), 9990e3)) << h.percentile(0.999);
  EXPECT_EQ(h.percentile(1.0), 10'000'000u);
  EXPECT_EQ(h.max(), 10'000'000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_DOUBLE_EQ(h.mean(), 5000.5e3);
}

TEST(LatencyHistogram, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 1; v < 5000; v += 3) (v % 2 ? a : b).record(v * 997), all.record(v * 997);
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.percentile(q), all.percentile(q)) << q;
}

// Feeds `bytes` to a reader `step` bytes at a time, as recv() would hand them over.
ResponseReader::Progress feed(ResponseReader& r, const std::string& bytes, size_t step) {
  ResponseReader::Progress p = ResponseReader::Progress::kNeedMore;
  for (size_t at = 0; at < bytes.size(); at += step) {
    const size_t n = std::min(step, bytes.size() - at);
    auto room = r.writable(n);
    std::copy_n(bytes.data() + at, n, room.data());
    p = r.received(n);
    if (p != ResponseReader::Progress::kNeedMore) return p;
  }
  return p;
}

TEST(ResponseReader, ContentLengthInPiecesOfAnySize) {
  const std::string answer =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\n\r\n{\"a\": [1,2]}";
  for (size_t step : {1u, 2u, 3u, 7u, 64u, 1000u}) {
    ResponseReader r;
    // 12 body bytes were sent against a length of 11: one is left over, which the worker treats as an error.
    ASSERT_EQ(feed(r, answer, step), ResponseReader::Progress::kComplete) << step;
    EXPECT_EQ(r.status(), 200);
    EXPECT_TRUE(r.keep_alive());
    EXPECT_EQ(r.body(), "{\"a\": [1,2]");
  }
  ResponseReader r;
  ASSERT_EQ(feed(r, answer, answer.size()), ResponseReader::Progress::kComplete);
  EXPECT_EQ(r.bytes_after_answer(), 1u);
  r.reset();
  const std::string exact = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_EQ(feed(r, exact, 5), ResponseReader::Progress::kComplete);
  EXPECT_EQ(r.status(), 401);
  EXPECT_EQ(r.body(), "{}");
  EXPECT_EQ(r.bytes_after_answer(), 0u);
}

TEST(ResponseReader, ChunkedWithExtensionsAndTrailers) {
  const std::string answer =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"
      "5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n";
  for (size_t step : {1u, 4u, 9u, 4096u}) {
    ResponseReader r;
    ASSERT_EQ(feed(r, answer, step), ResponseReader::Progress::kComplete) << step;
    EXPECT_EQ(r.body(), "hello world") << step;
    EXPECT_EQ(r.bytes_after_answer(), 0u);
  }
  ResponseReader bad;
  EXPECT_EQ(feed(bad, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100),
            ResponseReader::Progress::kMalformed);
  EXPECT_NE(bad.error().find("hexadecimal"), std::string::npos) << bad.error();
}

TEST(ResponseReader, ConnectionCloseHttp10AndBodiesThatRunToTheClose) {
  ResponseReader r;
  ASSERT_EQ(feed(r, "HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 8),
            ResponseReader::Progress::kComplete);
  EXPECT_EQ(r.status(), 503);
  EXPECT_FALSE(r.keep_alive());
  r.reset();
  ASSERT_EQ(feed(r, "HTTP/1.0 200 OK\r\n\r\nto the end", 3), ResponseReader::Progress::kNeedMore);
  ASSERT_EQ(r.closed(), ResponseReader::Progress::kComplete);
  EXPECT_EQ(r.body(), "to the end");
  EXPECT_FALSE(r.keep_alive());
  r.reset();
  ASSERT_EQ(feed(r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", 100), ResponseReader::Progress::kNeedMore);
  EXPECT_EQ(r.closed(), ResponseReader::Progress::kMalformed);
  EXPECT_NE(r.error().find("middle"), std::string::npos) << r.error();
  r.reset();
  EXPECT_EQ(feed(r, "SSH-2.0-OpenSSH\r\n\r\n", 100), ResponseReader::Progress::kMalformed);
  r.reset();
  ASSERT_EQ(feed(r, "HTTP/1.1 204 No Content\r\n\r\n", 100), ResponseReader::Progress::kComplete);
  EXPECT_EQ(r.body(), "");
}

TEST(AnswerCheck, CountsVectorKeysNotTheObjectName) {
  const std::string compact =
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":"AAAA"},)"
      R"({"object":"embedding","index":1,"embedding":[0.5,-1e-3]}],"model":"m",)"
      R"("usage":{"prompt_tokens":37,"total_tokens":37}})";
  EXPECT_EQ(count_embedding_keys(compact), 2u);
  EXPECT_EQ(find_prompt_tokens(compact), 37u);
  const std::string spaced =
      R"({"data": [{"object": "embedding", "embedding" : [1.0]}], "usage": {"prompt_tokens" : 5}})";
  EXPECT_EQ(count_embedding_keys(spaced), 1u);
  EXPECT_EQ(find_prompt_tokens(spaced), 5u);
  EXPECT_EQ(count_embedding_keys(R"({"error": {"message": "embedding failed"}})"), 0u);
  EXPECT_FALSE(find_prompt_tokens("[[0.1, 0.2]]").has_value());
  EXPECT_FALSE(find_prompt_tokens(R"({"prompt_tokens": null})").has_value());
}

TEST(RequestSet, ParsesUrls) {
  auto t = parse_url("http://127.0.0.1:30000");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, "30000");
  EXPECT_EQ(t->path_prefix, "");
  auto v6 = parse_url("http://[::1]:8080/base/");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "8080");
  EXPECT_EQ(v6->host_header, "[::1]:8080");
  EXPECT_EQ(v6->path_prefix, "/base");
  auto plain = parse_url("http://example");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->port, "80");
  EXPECT_FALSE(parse_url("https://x:1").ok());
  EXPECT_FALSE(parse_url("http://x:0").ok());
  EXPECT_FALSE(parse_url("http://x:port").ok());
  EXPECT_FALSE(parse_url("http://:80").ok());
}

TEST(RequestSet, PreparesTheExactBytes) {
  auto t = parse_url("http://h:1/p");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(prepare_request("POST", "/v1/embeddings", "{}", 1, *t, "k").bytes,
            "POST /p/v1/embeddings HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer k\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(prepare_request("GET", "/health", "", 0, *t, "").bytes, "GET /p/health HTTP/1.1\r\nHost: h:1\r\n\r\n");
}

TEST(RequestSet, ReadsTheRequestFileAndNamesTheBadLine) {
  auto t = parse_url("http://h:1");
  ASSERT_TRUE(t.ok());
  const std::string path = testing::TempDir() + "http_load_requests.txt";
  {
    std::ofstream f(path);
    f << "POST /v1/embeddings 2 {\"input\": [\"a b\", \"c\"]}\n\nGET /health 0\n";
  }
  auto loaded = load_request_file(path, *t, "");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].expected_vectors, 2u);
  EXPECT_NE((*loaded)[0].bytes.find("\r\n\r\n{\"input\": [\"a b\", \"c\"]}"), std::string::npos);
  EXPECT_EQ((*loaded)[1].bytes, "GET /health HTTP/1.1\r\nHost: h:1\r\n\r\n");
  {
    std::ofstream f(path);
    f << "POST /v1/embeddings 1 {}\nPOST /v1/embeddings many {}\n";
  }
  auto bad = load_request_file(path, *t, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(":2: INPUTS 'many'"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(load_request_file(path + ".missing", *t, "").ok());
  std::remove(path.c_str());
}

// A scripted server: answers each request (read up to its blank line; the test's requests have no body) with the
// next answer of `answers`, in turn, on every connection it accepts.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> answers) : answers_(std::move(answers)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listener_, 16);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void serve() {
    size_t next = 0;
    while (true) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      std::string pending;
      char buf[4096];
      while (true) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        pending.append(buf, static_cast<size_t>(n));
        size_t end;
        while ((end = pending.find("\r\n\r\n")) != std::string::npos) {
          pending.erase(0, end + 4);
          const std::string& a = answers_[next++ % answers_.size()];
          ::send(fd, a.data(), a.size(), MSG_NOSIGNAL);
        }
      }
      ::close(fd);
    }
  }
  std::vector<std::string> answers_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// The plan's address: 127.0.0.1:port, as main.cc fills it from the URL.
void aim_at_loopback(RunPlan& plan, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::memcpy(&plan.address, &addr, sizeof(addr));
  plan.address_len = sizeof(addr);
  plan.address_text = "127.0.0.1:" + std::to_string(port);
}

TEST(LoadWorker, OnceSendsEveryRequestAndCountsErrorsByKind) {
  const std::string ok_body = R"({"data":[{"object":"embedding","embedding":"AA"}],"usage":{"prompt_tokens":3}})";
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(ok_body.size()) + "\r\n\r\n" + ok_body;
  const std::string unauthorized = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}";
  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\r\n{\"d\r\n5\r\n\": 1}\r\n0\r\n\r\n";  // 200, but holds no vector
  ScriptedServer server({ok, unauthorized, ok, chunked});
  auto target = parse_url("http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_TRUE(target.ok());
  std::vector<PreparedRequest> requests;
  for (int i = 0; i < 40; ++i) requests.push_back(prepare_request("GET", "/x", "", 1, *target, ""));
  std::atomic<uint64_t> next{0};
  RunPlan plan;
  aim_at_loopback(plan, server.port());
  plan.requests = &requests;
  plan.once = true;
  plan.start_ns = now_ns();
  plan.end_ns = plan.start_ns + 20'000'000'000;
  plan.timeout_ns = 10'000'000'000;
  plan.next_request = &next;
  WorkerResult result;
  // One connection: the scripted server answers in turn, so each kind's count is known exactly.
  ASSERT_TRUE(run_worker(plan, 1, result).ok());
  EXPECT_EQ(result.ok, 20u);
  EXPECT_EQ(result.tokens, 60u);
  EXPECT_EQ(result.latency.count(), 20u);
  EXPECT_EQ(result.errors["401"], 10u);
  EXPECT_EQ(result.errors["wrong_vector_count"], 10u);
  EXPECT_EQ(result.errors.size(), 2u);
}

TEST(LoadWorker, ARefusedConnectionIsAnErrorNotAHang) {
  int port = 0;
  {  // a port nobody listens on: bind one, read its number, close it
    ScriptedServer gone({"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"});
    port = gone.port();
  }
  std::vector<PreparedRequest> requests;
  auto target = parse_url("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(target.ok());
  requests.push_back(prepare_request("GET", "/x", "", 0, *target, ""));
  std::atomic<uint64_t> next{0};
  RunPlan plan;
  aim_at_loopback(plan, port);
  plan.requests = &requests;
  plan.start_ns = plan.measure_from_ns = now_ns();
  plan.end_ns = plan.start_ns + 200'000'000;
  plan.timeout_ns = 1'000'000'000;
  plan.next_request = &next;
  WorkerResult result;
  const int64_t t0 = now_ns();
  ASSERT_TRUE(run_worker(plan, 2, result).ok());
  EXPECT_LT(now_ns() - t0, 1'000'000'000);
  EXPECT_EQ(result.ok, 0u);
  // Retried every 10 ms on each connection, not in a busy loop: ~40 in 0.2 s, far from thousands.
  EXPECT_GE(result.errors["connect"], 2u);
  EXPECT_LE(result.errors["connect"], 100u) << result.errors["connect"];
}

TEST(LoadWorker, OnceAgainstADownServerFailsEachRequestOnceAndEnds) {
  int port = 0;
  {
    ScriptedServer gone({"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"});
    port = gone.port();
  }
  auto target = parse_url("http://127.0.0.1:" + std::to_string(port));
  ASSERT_TRUE(target.ok());
  std::vector<PreparedRequest> requests(10, prepare_request("GET", "/x", "", 0, *target, ""));
  std::atomic<uint64_t> next{0};
  RunPlan plan;
  aim_at_loopback(plan, port);
  plan.requests = &requests;
  plan.once = true;
  plan.start_ns = plan.measure_from_ns = now_ns();
  plan.end_ns = plan.start_ns + 3'000'000'000;  // the limit: retrying until it would end the run here, and fail
  plan.timeout_ns = 1'000'000'000;
  plan.next_request = &next;
  WorkerResult result;
  const int64_t t0 = now_ns();
  ASSERT_TRUE(run_worker(plan, 2, result).ok());
  EXPECT_LT(now_ns() - t0, 2'000'000'000);
  EXPECT_EQ(result.ok, 0u);
  EXPECT_EQ(result.errors["connect"], 10u);  // one attempt per request, as http_load.py makes
}

TEST(LoadReport, PrintsTheSharedKeys) {
  LoadReport r;
  r.workload = "queries \"q\"";
  r.mode = "closed";
  r.seconds = 2;
  r.requests = 10;
  r.errors["401"] = 3;
  r.tokens = 100;
  r.latency.record(2'000'000);
  const std::string line = render_report(r);
  for (const char* key : {"\"requests\": 10", "\"errors\": 3", "\"errors_by_kind\": {\"401\": 3}",
                          "\"requests_per_s\": 5.0", "\"tokens_per_s\": 50.0", "\"p50_ms\": 2.000",
                          "\"p99_ms\": 2.000", "\"p999_ms\"", "\"max_ms\": 2.000",
                          "\"workload\": \"queries \\\"q\\\"\""}) {
    EXPECT_NE(line.find(key), std::string::npos) << key << " in " << line;
  }
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace embedserve::load
