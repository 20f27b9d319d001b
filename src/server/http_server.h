// HttpServer: the Boost.Beast listener and connections. Asynchronous, so thousands of keep-alive
// connections cost a socket and a small buffer each, not a thread; a few threads run the io_context.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "server/router.h"

namespace embedserve {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 30000;                   // 0: any free port (tests), see port()
  size_t io_threads = 2;
  size_t max_body_bytes = 64u << 20;       // larger bodies get 413 before they are read
  size_t max_header_bytes = 16u << 10;     // larger header blocks get 431
  // Request body bytes held at once across every connection, from the header that announces them until the
  // answer is ready; a body that would pass it gets 503 with Retry-After (unless it would be the only one).
  size_t max_body_bytes_in_flight = 256u << 20;
  std::chrono::seconds idle_timeout{75};   // a keep-alive connection with no request is closed after this
  // From a request's first byte to the end of its headers; a slower client gets 408 and the connection closes.
  std::chrono::milliseconds header_timeout{30000};
  // Connections open at once; more are answered 503 with Retry-After and closed. 0: the open-file limit less
  // 64 descriptors kept in reserve, at most 10,000.
  size_t max_connections = 0;
  bool access_log = true;                  // one line per request on stderr
  // POST /v1/files bodies are streamed into this folder (not held in memory, not counted against the body
  // limits above) up to max_file_bytes; empty: uploads are read like any other body.
  std::string upload_dir;
  size_t max_file_bytes = size_t{1} << 30;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Router& router);
  ~HttpServer();  // stops the io threads if still running
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens, starts the io threads, and starts catching SIGINT and SIGTERM.
  Status start();
  uint16_t port() const;

  // Blocks until SIGINT, SIGTERM or request_stop(). A second SIGINT or SIGTERM ends the process at once (exit
  // status 128 + the signal), whatever it is doing.
  void wait_for_stop_request();
  void request_stop();
  bool stop_requested() const;  // whether a stop was asked for (does not block)
  int stop_signal() const;      // SIGINT or SIGTERM when a signal asked for the stop, else 0

  // Graceful shutdown: close the listening socket, answer new requests on open connections with 503,
  // wait up to `timeout` for every in-flight request to be answered, then stop the io threads.
  // Returns false when the timeout passed with requests still in flight.
  bool shutdown(std::chrono::milliseconds timeout);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedserve
