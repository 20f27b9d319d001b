// The request-reading rules (server/http_request.h) on raw bytes: smuggling through transfer codings, Host
// and Authorization counts, limits, and pipelined requests, through the same parser setup the sessions use.
#include "server/http_request.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

const HttpLimits kLimits{1 << 16, 1 << 12};
const std::string kSmuggled = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

std::vector<ParsedRequest> parse(const std::string& wire) { return parse_pipelined_requests(wire, kLimits); }

// A POST whose body is a whole second request, framed by the given header lines.
std::string post_with(const std::string& framing) {
  return "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n" + framing + "\r\n" + kSmuggled;
}

void expect_one_rejection(const std::string& wire, int status, const std::string& mentions) {
  auto got = parse(wire);
  ASSERT_EQ(got.size(), 1u) << "the bytes after the bad request must never be read as a request:\n" << wire;
  ASSERT_TRUE(got[0].rejection) << wire;
  EXPECT_EQ(got[0].rejection->status, status) << wire;
  EXPECT_NE(got[0].rejection->message.find(mentions), std::string::npos) << got[0].rejection->message;
}

TEST(HttpRequest, TransferCodingsOtherThanOneFinalChunkedAreRefused) {
  for (const char* te : {"gzip", "identity", "chunked, chunked", "gzip, chunked", "chunked, gzip", "CHUNKED, ,chunked"})
    expect_one_rejection(post_with(std::string("Transfer-Encoding: ") + te + "\r\n"), 400, "Transfer-Encoding");
  // Two fields make one list (RFC 9110 §5.3): gzip then chunked.
  expect_one_rejection(post_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 400, "Transfer-Encoding");
  expect_one_rejection(post_with("Transfer-Encoding: gzip\r\nContent-Length: " + std::to_string(kSmuggled.size()) +
                                 "\r\n"),
                       400, "Content-Length");
  expect_one_rejection("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0");
}

TEST(HttpRequest, ChunkedAloneIsDecoded) {
  auto got = parse("POST /v1/embeddings?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
                   "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" + kSmuggled);
  ASSERT_EQ(got.size(), 2u);
  ASSERT_FALSE(got[0].rejection) << got[0].rejection->message;
  EXPECT_EQ(got[0].request.body, "abcde");
  EXPECT_EQ(got[0].request.path, "/v1/embeddings");
  ASSERT_FALSE(got[1].rejection);
  EXPECT_EQ(got[1].request.method, "GET");
  EXPECT_EQ(got[1].request.path, "/health");
}

TEST(HttpRequest, Http11NeedsExactlyOneHost) {
  expect_one_rejection("GET /health HTTP/1.1\r\n\r\n", 400, "Host");
  expect_one_rejection("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host");
  auto old = parse("GET /health HTTP/1.0\r\n\r\n");
  ASSERT_EQ(old.size(), 1u);
  EXPECT_FALSE(old[0].rejection);
}

TEST(HttpRequest, TwoAuthorizationHeadersAreRefused) {
  expect_one_rejection("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
                       400, "Authorization");
  auto one = parse("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n\r\n");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].request.authorization, "Bearer a");
}

TEST(HttpRequest, LimitsAndMalformedBytesGetTheirStatus) {
  expect_one_rejection("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", 413, "--max-body-bytes");
  expect_one_rejection("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(5000, 'a') + "\r\n\r\n", 431, "headers");
  expect_one_rejection("GARBAGE\r\n\r\n", 400, "malformed");
  expect_one_rejection("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "malformed");
}

TEST(HttpRequest, PipelinedRequestsStopAtConnectionCloseAndAtIncompleteBytes) {
  auto got = parse(kSmuggled + "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + kSmuggled);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0].keep_alive);
  EXPECT_FALSE(got[1].keep_alive);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc").size(), 0u);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nHo").size(), 0u);
}

}  // namespace
}  // namespace embedserve
