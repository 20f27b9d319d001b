// HttpServer: Beast listener and sessions (read under limits, dispatch, write, keep-alive, disconnect
// detection, access log), signal handling and graceful shutdown.
#include "server/http_server.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/file_body.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "jobs/ids.h"
#include "scheduler/busy_poll.h"
#include "server/http_request.h"

namespace embedserve {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpServer::Impl {
  HttpServerOptions options;
  Router& router;
  net::io_context ioc;
  struct Listener {
    explicit Listener(net::io_context& ioc) : acceptor(ioc), retry(ioc) {}
    tcp::acceptor acceptor;
    net::steady_timer retry;  // after a failed accept (e.g. out of descriptors): try again shortly, not in a spin
  };
  std::vector<std::unique_ptr<Listener>> listeners;  // one per address --host resolves to
  net::signal_set signals{ioc, SIGINT, SIGTERM};
  // Keeps run() from returning while answers are still being computed off the io threads: during shutdown
  // the listener and signal waits are gone, and a session waiting for its answer has no operation pending.
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  std::promise<void> stop_promise;
  std::atomic<bool> stop_requested{false};
  std::atomic<int> stop_signal{0};  // the signal that asked for the stop; 0: none (or request_stop())
  std::atomic<int> signals_seen{0};
  std::atomic<bool> draining{false};
  std::atomic<size_t> unanswered{0};  // requests read whose response is not yet written
  // The connection and body-byte counts every session shares. Owned jointly with the sessions: one may outlive
  // the server (a worker can still hold its answer callback) and must still give its share back.
  struct Admission {
    std::atomic<size_t> connections{0};  // sessions admitted and not yet destroyed
    std::atomic<size_t> body_bytes{0};   // request body bytes admitted and not yet answered
    size_t max_connections = 0;          // options.max_connections, or the default worked out by start()
    size_t max_body_bytes = 0;           // options.max_body_bytes_in_flight
    // Admits `n` more body bytes for a request that already holds `held`: within the budget, or when that
    // request is the only holder, so a body within --max-body-bytes is never refused forever.
    bool reserve_body_bytes(size_t n, size_t held) {
      size_t cur = body_bytes.load(std::memory_order_relaxed);
      do {
        if (cur + n > max_body_bytes && cur != held) return false;
      } while (!body_bytes.compare_exchange_weak(cur, cur + n, std::memory_order_acq_rel));
      return true;
    }
  };
  const std::shared_ptr<Admission> admission = std::make_shared<Admission>();
  uint16_t bound_port = 0;
  const HttpLimits limits{options.max_body_bytes, options.max_header_bytes};

  Impl(HttpServerOptions o, Router& r) : options(std::move(o)), router(r) {
    admission->max_body_bytes = options.max_body_bytes_in_flight;
  }
  Status listen();
  void do_accept(Listener& listener);
  void trigger_stop() {
    if (!stop_requested.exchange(true)) stop_promise.set_value();
  }
  // One network thread: ioc.run(), except that while busy polling is on (scheduler/busy_poll.h) an idle thread
  // keeps running ready handlers without sleeping for that long after its last one, so a request's arrival or its
  // answer from a worker (posted to the session's strand) does not wait for epoll to wake it.
  void run_network_loop() {
    auto last = std::chrono::steady_clock::now();
    while (!ioc.stopped()) {
      // One handler at a time, not run(): serve turns polling on once the model has loaded, after these threads
      // started.
      const auto poll = busy_poll::get();
      if (poll.count() > 0) {
        if (ioc.poll() > 0) {
          last = std::chrono::steady_clock::now();
          continue;
        }
        if (std::chrono::steady_clock::now() - last < poll) {
          busy_poll::relax();
          continue;
        }
      }
      if (ioc.run_one() == 0) return;  // stopped or out of work
      last = std::chrono::steady_clock::now();
    }
  }
  // The first SIGINT or SIGTERM asks for a graceful stop; a second one, while the load, the drain or an engine
  // call still runs, ends the process at once (the user's way out of a wait they do not want).
  void watch_signals() {
    signals.async_wait([this](beast::error_code e, int signal) {
      if (e) return;
      if (signals_seen.fetch_add(1) > 0) {
        std::fprintf(stderr, "embedserve serve: second %s: exiting now\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
        std::_Exit(128 + signal);
      }
      stop_signal.store(signal);
      trigger_stop();
      watch_signals();
    });
  }
};

namespace {

std::string seconds(std::chrono::milliseconds d) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", std::chrono::duration<double>(d).count());
  return text;
}

// ISO 8601 in UTC with milliseconds ("2026-11-30T03:16:03.123Z"): log lines from several hosts sort and
// compare without knowing each machine's time zone.
void utc_timestamp(char (&out)[32]) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  const size_t n = std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(out + n, sizeof out - n, ".%03dZ", static_cast<int>(ms));
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `counted`: the session holds one of the server's --max-connections places until it is destroyed.
  Session(tcp::socket&& socket, HttpServer::Impl& server, bool counted)
      : stream_(std::move(socket)),
        header_timer_(stream_.get_executor()),
        server_(server),
        admission_(server.admission),
        counted_(counted) {}
  ~Session() {  // may run after the server is gone: touches only what it shares ownership of
    release_body();
    discard_upload();
    if (counted_) admission_->connections.fetch_sub(1, std::memory_order_acq_rel);
  }

  void run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

  // A connection past --max-connections: answered 503 at once, without reading its request, then closed.
  void refuse() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->reject({503, "the server has " + std::to_string(self->admission_->max_connections) +
                             " connections open, its limit (--max-connections); retry shortly"});
    });
  }

 private:
  // Between requests a connection may idle up to options.idle_timeout and is then closed without a word; once
  // the first byte of a request arrives, its headers must be complete within --header-timeout or it gets 408.
  void do_read() {
    parser_.emplace();
    upload_parser_.reset();
    configure_request_parser(*parser_, server_.limits);
    // An upload's Content-Length is checked against --max-file-bytes, every other body's against
    // --max-body-bytes, once the route is known (on_header); Beast checks its limit while parsing the header.
    if (uploads_enabled()) parser_->body_limit(std::max(server_.limits.max_body_bytes, server_.options.max_file_bytes));
    if (buffer_.size() > 0) return read_header();  // a pipelined request's bytes are already here
    stream_.expires_after(server_.options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->close();  // idle timeout, EOF or reset between requests: nothing to answer
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    stream_.expires_never();  // the header timer bounds this phase; Beast's own timeout would close unanswered
    header_timed_out_ = false;
    header_timer_.expires_after(server_.options.header_timeout);
    header_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // cancelled: the headers arrived
      self->header_timed_out_ = true;
      self->stream_.cancel();
    });
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, size_t n) {
    header_timer_.cancel();
    if (ec == net::error::operation_aborted && header_timed_out_)
      return reject({408, "the request headers were not complete within " + seconds(server_.options.header_timeout) +
                              " (--header-timeout); the connection is closed"});
    if (!ec)
      if (auto rejection = check_request_header(parser_->get())) return reject(std::move(*rejection));
    if (ec || parser_->is_done()) return on_read(ec, n);
    if (uploads_enabled()) {
      if (is_upload(parser_->get())) return begin_upload();
      if (auto length = parser_->content_length(); length && *length > server_.limits.max_body_bytes)
        return reject(rejection_for_parse_error(http::error::body_limit, server_.limits));
      parser_->body_limit(server_.limits.max_body_bytes);  // a chunked body is held to it as it arrives
    }
    // A body is held in memory until its answer is ready; a Content-Length is admitted whole, before a byte of
    // it is read, so the bodies of many slow clients cannot add up past the process-wide budget.
    if (auto length = parser_->content_length(); length && !reserve_body(*length)) return reject(body_budget_full());
    stream_.expires_after(server_.options.idle_timeout);  // the body, like the wait between requests
    // curl and other clients send `Expect: 100-continue` with larger bodies and wait (curl: 1 s) for a go-ahead;
    // give it once the headers pass the limits, so the body is never refused after being sent.
    if (!beast::iequals(parser_->get()[http::field::expect], "100-continue")) return read_body();
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code write_ec, size_t) {
                       if (write_ec) return self->close();
                       self->read_body();
                     });
  }

  bool uploads_enabled() const { return !server_.options.upload_dir.empty(); }

  static bool is_upload(const RequestHeader& h) {
    if (h.method() != http::verb::post) return false;
    const auto target = h.target();
    const std::string_view t(target.data(), target.size());
    return t.substr(0, t.find('?')) == "/v1/files";
  }

  // POST /v1/files: the body goes to a file under --data-dir as it arrives (file_body), never into memory, up to
  // --max-file-bytes; the key and the route are checked before a byte of it is read.
  void begin_upload() {
    const auto length = parser_->content_length();
    if (auto answer = server_.router.precheck_upload(to_server_request_head(parser_->get()),
                                                     length ? std::optional<uint64_t>(*length) : std::nullopt)) {
      begin_answer();
      keep_alive_ = false;  // the body was not read
      make_respond()(std::move(*answer));
      return;
    }
    const size_t max_file = server_.options.max_file_bytes;
    if (auto length = parser_->content_length(); length && *length > max_file)
      return reject({413, "the file is larger than the limit of " + std::to_string(max_file) +
                              " bytes (--max-file-bytes)"});
    auto name = jobs::random_id("upload-");
    if (!name.ok()) return reject({503, name.status().message()});
    const std::string path = server_.options.upload_dir + "/" + *name;
    upload_parser_.emplace(std::move(*parser_));
    parser_.reset();
    upload_parser_->body_limit(max_file);
    beast::error_code ec;
    upload_parser_->get().body().open(path.c_str(), beast::file_mode::write, ec);
    if (ec) return reject({503, "cannot store the upload under --data-dir: " + ec.message()});
    upload_path_ = path;
    if (!beast::iequals(upload_parser_->get()[http::field::expect], "100-continue")) return read_upload();
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                     [self = shared_from_this()](beast::error_code write_ec, size_t) {
                       if (write_ec) return self->close();
                       self->read_upload();
                     });
  }

  // Piece by piece, so the idle timeout bounds each wait for bytes, not the whole (possibly gigabyte) body.
  void read_upload() {
    stream_.expires_after(server_.options.idle_timeout);
    http::async_read_some(stream_, buffer_, *upload_parser_,
                          beast::bind_front_handler(&Session::on_upload_part, shared_from_this()));
  }

  void on_upload_part(beast::error_code ec, size_t) {
    if (ec) {
      discard_upload();
      if (ec == http::error::body_limit)
        return reject({413, "the file is larger than the limit of " + std::to_string(server_.options.max_file_bytes) +
                                " bytes (--max-file-bytes)"});
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
          ec == net::error::eof || ec == net::error::connection_reset)
        return close();
      return reject(rejection_for_parse_error(ec, server_.limits));
    }
    if (!upload_parser_->is_done()) return read_upload();
    beast::error_code close_ec;
    upload_parser_->get().body().file().close(close_ec);
    begin_answer();
    auto& req = upload_parser_->get();
    keep_alive_ = req.keep_alive();
    ServerRequest r = to_server_request_head(req);
    r.body_file = std::move(upload_path_);
    upload_path_.clear();
    cancel_ = std::make_shared<std::atomic<bool>>(false);
    stream_.expires_never();
    watch_for_disconnect();
    server_.router.handle(std::move(r), cancel_, make_respond());
  }

  void discard_upload() {
    if (upload_path_.empty()) return;
    if (upload_parser_) {
      beast::error_code ec;
      upload_parser_->get().body().file().close(ec);
    }
    std::remove(upload_path_.c_str());
    upload_path_.clear();
  }

  void read_body() {
    if (!parser_->chunked())
      return http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
    http::async_read_some(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_body_part, shared_from_this()));
  }

  // A chunked body announces no size: it is admitted as it grows, a step at a time, so it overshoots the
  // budget by at most one step per connection.
  void on_body_part(beast::error_code ec, size_t n) {
    if (ec) return on_read(ec, n);
    constexpr size_t kStep = 64u << 10;
    const size_t have = parser_->get().body().size();
    if (have > body_reserved_ && !reserve_body((have / kStep + 1) * kStep)) return reject(body_budget_full());
    if (parser_->is_done()) return on_read(ec, n);
    read_body();
  }

  // Grows this request's share of the body budget to `total` bytes.
  bool reserve_body(size_t total) {
    if (total <= body_reserved_) return true;
    if (!admission_->reserve_body_bytes(total - body_reserved_, body_reserved_)) return false;
    body_reserved_ = total;
    return true;
  }

  void release_body() {
    admission_->body_bytes.fetch_sub(body_reserved_, std::memory_order_acq_rel);
    body_reserved_ = 0;
  }

  HttpRejection body_budget_full() const {
    return {503, "the server holds " + std::to_string(admission_->body_bytes.load(std::memory_order_relaxed)) +
                     " bytes of request bodies and may hold " +
                     std::to_string(server_.options.max_body_bytes_in_flight) +
                     " (--max-body-bytes-in-flight); retry shortly"};
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::eof || ec == net::error::connection_reset)
      return close();
    if (ec) return reject(rejection_for_parse_error(ec, server_.limits));
    begin_answer();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    ServerRequest r = to_server_request(req);
    path_ = r.path;
    cancel_ = std::make_shared<std::atomic<bool>>(false);
    stream_.expires_never();  // the scheduler enforces --request-timeout; a slow batch must not cut the socket
    watch_for_disconnect();
    server_.router.handle(std::move(r), cancel_, make_respond());
  }

  // Every request read (or refused) is answered once; the access log and shutdown count from here.
  void begin_answer() {
    start_ = std::chrono::steady_clock::now();
    server_.unanswered.fetch_add(1, std::memory_order_acq_rel);
    const RequestHeader* head = nullptr;
    if (upload_parser_) head = &upload_parser_->get();
    else if (parser_ && parser_->is_header_done()) head = &parser_->get();
    if (head) {
      method_ = std::string(head->method_string());
      path_ = std::string(head->target());
      version_ = head->version();
    } else {
      method_ = "-";
      path_ = "-";
    }
  }

  // An answer from the HTTP layer itself (bad framing, limits): the stream position is unknown or the rest
  // of the request unwanted, so the connection closes after it.
  void reject(HttpRejection rejection) {
    begin_answer();
    keep_alive_ = false;
    server_.router.reject(rejection.status, std::move(rejection.message), make_respond());
  }

  // While a request is being computed nobody reads the socket; wait for it to become readable: EOF or
  // an error means the client left (its queued inputs are then skipped), data means a pipelined request.
  void watch_for_disconnect() {
    auto self = shared_from_this();
    CancelFlag flag = cancel_;
    stream_.socket().async_wait(tcp::socket::wait_read, [self, flag](beast::error_code ec) {
      if (flag != self->cancel_ || self->answered_) return;
      if (ec) {
        if (ec != net::error::operation_aborted) flag->store(true);
        return;
      }
      // A raw non-blocking peek: the reactor may report readiness left over from the request just read, and
      // asio's synchronous receive would then block this connection's strand until the client sends or leaves.
      char byte;
      const ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return self->watch_for_disconnect();
      if (n <= 0) flag->store(true);  // 0: orderly close; < 0: reset or other error
    });
  }

  Respond make_respond() {
    answered_ = false;
    auto self = shared_from_this();
    return [self](ServerResponse r) {
      net::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    };
  }

  void write(ServerResponse r) {
    answered_ = true;
    release_body();  // before a byte of the answer leaves, so a client that has read it finds the room free
    status_ = r.status;
    inputs_ = r.inputs;
    tokens_ = r.tokens;
    const bool keep = keep_alive_ && !server_.draining.load(std::memory_order_acquire);
    if (!r.body_file.empty()) return write_file(std::move(r), keep);
    response_.emplace(static_cast<http::status>(r.status), version_ ? version_ : 11);
    response_->set(http::field::server, "embedserve");
    if (!r.content_type.empty()) response_->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) response_->set(name, value);
    response_->keep_alive(keep);
    response_->body() = std::move(r.body);
    response_->prepare_payload();
    if (r.status == 204) response_->erase(http::field::content_length);  // RFC 9110 §8.6: never on a 204
    stream_.expires_after(std::chrono::seconds(60));  // a client that stops reading cannot hold us forever
    http::async_write(stream_, *response_, beast::bind_front_handler(&Session::on_write, shared_from_this(), keep));
  }

  // A file answer (GET /v1/files/{id}/content) streams from disk through file_body, a buffer at a time.
  void write_file(ServerResponse r, bool keep) {
    http::file_body::value_type file;
    beast::error_code ec;
    file.open(r.body_file.c_str(), beast::file_mode::scan, ec);
    if (ec) {  // deleted between the lookup and now
      ServerResponse gone = error_response({404, "invalid_request_error", "not_found",
                                            "the file was deleted before its content could be sent", "", 0},
                                           ErrorShape::kOpenAi);
      gone.route = r.route;
      return write(std::move(gone));
    }
    const uint64_t bytes = file.size();
    file_response_.emplace(static_cast<http::status>(r.status), version_ ? version_ : 11);
    file_response_->set(http::field::server, "embedserve");
    if (!r.content_type.empty()) file_response_->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) file_response_->set(name, value);
    file_response_->keep_alive(keep);
    file_response_->body() = std::move(file);
    file_response_->prepare_payload();
    // Room for a slow reader of a large file (1 MiB/s), but never forever.
    stream_.expires_after(std::chrono::seconds(60 + bytes / (1u << 20)));
    http::async_write(stream_, *file_response_, beast::bind_front_handler(&Session::on_write, shared_from_this(), keep));
  }

  void on_write(bool keep, beast::error_code ec, size_t) {
    if (server_.options.access_log) {
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
      char when[32];
      utc_timestamp(when);
      // One fprintf per line: stdio locks the stream per call, so lines from io threads never interleave.
      std::fprintf(stderr, "%s %s %s %d inputs=%zu tokens=%zu %.1fms\n", when, method_.c_str(), path_.c_str(), status_,
                   inputs_, tokens_, ms);
    }
    response_.reset();
    file_response_.reset();
    server_.unanswered.fetch_sub(1, std::memory_order_acq_rel);
    if (ec) return close();
    if (!keep) return linger_then_close();
    do_read();
  }

  // After answering a request we will not read further (413, a parse error, Connection: close), shut down
  // our side and discard what the client still sends for a moment, so it reads the answer instead of a reset.
  void linger_then_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(2));
    discard();
  }

  void discard() {
    stream_.async_read_some(net::buffer(discard_buffer_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->discard();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  static constexpr size_t kFirstRead = 1024;  // Beast's own reads grow the buffer from here as needed

  beast::tcp_stream stream_;
  net::steady_timer header_timer_;
  HttpServer::Impl& server_;
  const std::shared_ptr<HttpServer::Impl::Admission> admission_;
  const bool counted_;
  bool header_timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::request_parser<http::file_body>> upload_parser_;  // POST /v1/files only
  std::string upload_path_;  // the upload's file while this session still owns it
  std::optional<http::response<http::file_body>> file_response_;
  CancelFlag cancel_;
  size_t body_reserved_ = 0;  // this request's share of the server's body budget
  bool answered_ = false;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  std::string method_, path_;
  int status_ = 0;
  size_t inputs_ = 0, tokens_ = 0;
  std::chrono::steady_clock::time_point start_;
  char discard_buffer_[4096];
};

}  // namespace

// Binds every address --host resolves to (localhost: 127.0.0.1, and ::1 where the hosts file lists it) on one
// port. An address this host does not have is skipped while another one binds; any other failure is an error.
Status HttpServer::Impl::listen() {
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  const auto results = resolver.resolve(options.host, std::to_string(options.port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty())
    return invalid_argument("--host '" + options.host + "' is neither an IP address nor a name that resolves" +
                            (ec ? ": " + ec.message() : std::string()));
  std::vector<tcp::endpoint> endpoints;
  for (const auto& r : results)
    if (std::find(endpoints.begin(), endpoints.end(), r.endpoint()) == endpoints.end()) endpoints.push_back(r.endpoint());
  beast::error_code skipped;
  for (tcp::endpoint endpoint : endpoints) {
    if (bound_port) endpoint.port(bound_port);  // --port 0: every address takes the port the first one got
    auto l = std::make_unique<Listener>(ioc);
    auto& acc = l->acceptor;
    acc.open(endpoint.protocol(), ec);
    // An IPv6 socket would also take IPv4 traffic on dual-stack hosts and collide with its IPv4 twin.
    if (!ec && endpoint.address().is_v6()) acc.set_option(net::ip::v6_only(true), ec);
    if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(endpoint, ec);
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec == boost::system::errc::address_not_available || ec == boost::system::errc::address_family_not_supported) {
      skipped = ec;
      continue;
    }
    if (ec)
      return io_error("cannot listen on " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port()) +
                      " (--host " + options.host + "): " + ec.message() +
                      (ec == net::error::address_in_use ? " (is another server running? pick --port)" : ""));
    if (!bound_port) bound_port = acc.local_endpoint().port();
    listeners.push_back(std::move(l));
  }
  if (listeners.empty())
    return io_error("cannot listen on any address of --host " + options.host + ": " + skipped.message());
  return Status();
}

void HttpServer::Impl::do_accept(Listener& l) {
  l.acceptor.async_accept(net::make_strand(ioc), [this, &l](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !l.acceptor.is_open()) return;
    if (ec) {
      l.retry.expires_after(std::chrono::milliseconds(50));
      l.retry.async_wait([this, &l](beast::error_code) { if (l.acceptor.is_open()) do_accept(l); });
      return;
    }
    // The cap keeps descriptors in reserve, so a connection past it can still be accepted and told why.
    auto& a = *admission;
    const bool admitted = a.connections.fetch_add(1, std::memory_order_acq_rel) < a.max_connections;
    if (!admitted) a.connections.fetch_sub(1, std::memory_order_acq_rel);
    auto session = std::make_shared<Session>(std::move(socket), *this, admitted);
    if (admitted) session->run();
    else session->refuse();
    do_accept(l);
  });
}

HttpServer::HttpServer(HttpServerOptions options, Router& router)
    : impl_(std::make_unique<Impl>(std::move(options), router)) {}

HttpServer::~HttpServer() {
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
}

Status HttpServer::start() {
  // Each connection is a file descriptor; the default soft limit (often 1024) would cap concurrency.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  // Descriptors kept back from connections: the listener, the model's files, the refusals themselves. At
  // the descriptor limit accept() fails and a client would wait in the backlog with no answer.
  constexpr size_t kReservedDescriptors = 64;
  const size_t descriptors = getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY
                                 ? static_cast<size_t>(lim.rlim_cur) : SIZE_MAX;
  const size_t allowed = descriptors > 2 * kReservedDescriptors ? descriptors - kReservedDescriptors
                                                                : descriptors / 2;
  auto& max = impl_->admission->max_connections;
  max = impl_->options.max_connections ? impl_->options.max_connections : std::min<size_t>(allowed, 10000);
  if (max > allowed)
    return invalid_argument("--max-connections " + std::to_string(max) + " is more than the open-file limit allows (" +
                            std::to_string(descriptors) + " descriptors, " + std::to_string(kReservedDescriptors) +
                            " kept in reserve): raise it with 'ulimit -n' or lower --max-connections");
  EMBEDSERVE_RETURN_IF_ERROR(impl_->listen());
  impl_->watch_signals();
  for (auto& l : impl_->listeners) impl_->do_accept(*l);
  const size_t n = std::max<size_t>(1, impl_->options.io_threads);
  for (size_t i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->run_network_loop(); });
  return Status();
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::wait_for_stop_request() { impl_->stop_promise.get_future().wait(); }

void HttpServer::request_stop() { impl_->trigger_stop(); }

bool HttpServer::stop_requested() const { return impl_->stop_requested.load(); }

int HttpServer::stop_signal() const { return impl_->stop_signal.load(); }

bool HttpServer::shutdown(std::chrono::milliseconds timeout) {
  impl_->draining.store(true, std::memory_order_release);
  impl_->router.set_draining();
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    for (auto& l : impl_->listeners) {
      l->acceptor.close(ec);
      l->retry.cancel();
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Polling keeps locks out of this layer; shutdown happens once, so 5 ms granularity costs nothing.
  while (impl_->unanswered.load(std::memory_order_acquire) > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool drained = impl_->unanswered.load(std::memory_order_acquire) == 0;
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable()) t.join();
  return drained;
}

}  // namespace embedserve
