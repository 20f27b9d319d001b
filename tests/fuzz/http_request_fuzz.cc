// libFuzzer target: arbitrary bytes as one connection's request stream, read with the parser setup and the
// RFC 9112 checks the server's sessions use (server/http_request.h). Besides crashes and UB (the
// sanitizers), it checks what must hold for every stream: one answer per refused connection, bodies within
// the limit, and that an accepted request can be written back out and parsed again to the same thing.
#include <cstdint>
#include <string>
#include <string_view>

#include "server/http_request.h"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Small limits, so the fuzzer reaches 413 and 431 with short inputs.
constexpr embedserve::HttpLimits kLimits{4096, 1024};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  const auto parsed = embedserve::parse_pipelined_requests(wire, kLimits);
  for (size_t i = 0; i < parsed.size(); ++i) {
    const auto& p = parsed[i];
    if (p.rejection) {
      const int s = p.rejection->status;
      check(s == 400 || s == 413 || s == 431);
      check(!p.rejection->message.empty());
      check(i + 1 == parsed.size());  // the connection closes after a refusal: nothing after it is read
      continue;
    }
    check(!p.request.method.empty());
    check(p.request.path.find('?') == std::string::npos);
    check(p.request.body.size() <= kLimits.max_body_bytes);
    if (!p.keep_alive) check(i + 1 == parsed.size());
    // Framed again with a Content-Length, the request must read back as itself: what the server acted on is
    // what a proxy in front of it would have forwarded.
    if (p.request.path.empty() || p.request.path.find_first_of(" \r\n") != std::string::npos) continue;
    std::string again = p.request.method + " " + p.request.path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                        std::to_string(p.request.body.size()) + "\r\nConnection: close\r\n\r\n" + p.request.body;
    const auto round_trip = embedserve::parse_pipelined_requests(again, kLimits);
    if (round_trip.size() == 1 && !round_trip[0].rejection) {
      check(round_trip[0].request.method == p.request.method);
      check(round_trip[0].request.path == p.request.path);
      check(round_trip[0].request.body == p.request.body);
    }
  }
  return 0;
}
