// LoadWorker: non-blocking sockets on level-triggered epoll; closed or open loop; every answer checked.
#include "load_worker.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "answer_check.h"

namespace embedserve::load {

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kConnectRetryNs = 10 * kMs;  // after a refused connect: a down server costs no busy loop
constexpr int64_t kTimeoutScanNs = 50 * kMs;
constexpr int kMessagesPerKind = 3;             // per worker: the first failures of each kind go to stderr

class LoadWorker {
 public:
  LoadWorker(const RunPlan& plan, int connections, WorkerResult& result)
      : plan_(plan), conns_(static_cast<size_t>(connections)), result_(result), reopening_(conns_.size()) {}
  ~LoadWorker() {
    for (size_t i = 0; i < conns_.size(); ++i) close_socket(i);
    if (epoll_ >= 0) ::close(epoll_);
  }

  Status run();

 private:
  enum class State { kReopen, kConnecting, kIdle, kSending, kAwaiting, kDone };
  struct Connection {
    int fd = -1;
    State state = State::kReopen;
    int64_t retry_at_ns = 0;   // kReopen: when to connect again
    int64_t since_ns = 0;      // when the connect or the send began (for --timeout)
    int64_t started_ns = 0;    // the request's start for its latency: its send, or its slot in an open loop
    const PreparedRequest* request = nullptr;
    size_t sent = 0;
    bool watching_out = false;
    bool listed_idle = false;  // in idle_ (entries of connections no longer idle are skipped when taken)
    ResponseReader reader;
  };

  bool measuring(int64_t t) const { return plan_.once || (t >= plan_.measure_from_ns && t < plan_.end_ns); }
  bool in_flight(const Connection& c) const { return c.state == State::kSending || c.state == State::kAwaiting; }

  void open(size_t i, int64_t now);
  void close_socket(size_t i);
  void reopen(size_t i, int64_t delay_ns, int64_t now);
  void schedule_open(size_t i, int64_t at_ns);
  void connect_failed(size_t i, const std::string& message, int64_t retry_after_ns, int64_t now);
  void become_idle(size_t i);
  void watch_out(size_t i, bool on);
  void on_event(size_t i, uint32_t events, int64_t now);
  void on_connected(size_t i, int64_t now);
  void send_more(size_t i, int64_t now);
  void on_readable(size_t i, int64_t now);
  void on_answer(size_t i, int64_t now);
  void fail(size_t i, const std::string& kind, const std::string& message, int64_t now);
  void count_error(const std::string& kind, const std::string& message);
  const PreparedRequest* take_request();
  void dispatch(int64_t now);
  void reopen_due(int64_t now);
  void check_timeouts(int64_t now);
  int wait_ms(int64_t now) const;
  bool finished(int64_t now) const;
  int64_t slot_ns(uint64_t k) const {
    const double since_start = static_cast<double>(k) * 1e9 / plan_.rate_per_s;
    return plan_.start_ns + plan_.rate_offset_ns + static_cast<int64_t>(since_start);
  }

  const RunPlan& plan_;
  std::vector<Connection> conns_;
  WorkerResult& result_;
  int epoll_ = -1;
  std::vector<size_t> idle_;  // connections waiting for a request (open loop: for their slot)
  uint64_t next_slot_ = 0;    // open loop: the next send's index in this worker's schedule
  bool exhausted_ = false;    // once: every request has been handed out
  int64_t next_timeout_scan_ns_ = 0;
  std::map<std::string, int> messages_;
  size_t reopening_;  // connections in kReopen: the loop scans for due ones only while there are any
};

Status LoadWorker::run() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return io_error(std::string("epoll_create1: ") + std::strerror(errno));
  int64_t now = now_ns();
  for (size_t i = 0; i < conns_.size(); ++i) open(i, now);
  std::vector<epoll_event> events(std::max<size_t>(64, conns_.size()));
  while (true) {
    now = now_ns();
    reopen_due(now);
    dispatch(now);
    if (finished(now)) break;
    if (now >= next_timeout_scan_ns_) {
      check_timeouts(now);
      next_timeout_scan_ns_ = now + kTimeoutScanNs;
    }
    int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), wait_ms(now));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(std::string("epoll_wait: ") + std::strerror(errno));
    }
    // The clock is read per event (a vDSO call, ~20 ns): an answer late in a batch of hundreds is not stamped early.
    for (int e = 0; e < n; ++e) on_event(events[e].data.u32, events[e].events, now_ns());
  }
  if (plan_.once) {  // requests never answered before the limit: failures, not silently dropped
    now = now_ns();
    for (size_t i = 0; i < conns_.size(); ++i)
      if (in_flight(conns_[i])) fail(i, "unfinished", "no answer before the run's --duration limit", now);
  }
  return Status::ok_status();
}

bool LoadWorker::finished(int64_t now) const {
  if (now >= plan_.end_ns) return true;
  if (!plan_.once || !exhausted_) return false;
  return std::none_of(conns_.begin(), conns_.end(), [this](const Connection& c) { return in_flight(c); });
}

int LoadWorker::wait_ms(int64_t now) const {
  int64_t until = std::min(plan_.end_ns, next_timeout_scan_ns_);
  if (reopening_ > 0)
    for (const Connection& c : conns_)
      if (c.state == State::kReopen) until = std::min(until, c.retry_at_ns);
  if (plan_.rate_per_s > 0 && !idle_.empty()) until = std::min(until, slot_ns(next_slot_));
  if (until <= now) return 0;
  return static_cast<int>((until - now + kMs - 1) / kMs);  // rounded up: never wakes just before it is due
}

void LoadWorker::open(size_t i, int64_t now) {
  Connection& c = conns_[i];
  if (c.state == State::kReopen) --reopening_;
  if (plan_.once && exhausted_) {
    c.state = State::kDone;
    return;
  }
  c.fd = ::socket(plan_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    connect_failed(i, std::string("socket: ") + std::strerror(errno) +
                          " (raise the open-file limit, ulimit -n, for this many connections)", kConnectRetryNs, now);
    return;
  }
  int one = 1;
  // Requests leave in one send(): Nagle's delay would only add the server's delayed ACK to every latency.
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.u32 = static_cast<uint32_t>(i);
  epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
  c.watching_out = true;
  c.since_ns = now;
  c.state = State::kConnecting;
  int rc = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&plan_.address), plan_.address_len);
  if (rc == 0) {
    on_connected(i, now);
  } else if (errno != EINPROGRESS) {
    const int err = errno;
    close_socket(i);
    connect_failed(i, "connect to " + plan_.address_text + ": " + std::strerror(err), kConnectRetryNs, now);
  }
}

void LoadWorker::connect_failed(size_t i, const std::string& message, int64_t retry_after_ns, int64_t now) {
  if (plan_.once) {
    // Each request gets one attempt, as in http_load.py: the next one fails with the connect, so a server that is
    // down ends the run at once instead of at the --duration limit.
    if (take_request() == nullptr) {
      conns_[i].state = State::kDone;
      return;
    }
  }
  count_error("connect", message);
  schedule_open(i, now + retry_after_ns);
}

void LoadWorker::close_socket(size_t i) {
  Connection& c = conns_[i];
  if (c.fd >= 0) ::close(c.fd);  // closing removes it from the epoll set
  c.fd = -1;
  c.watching_out = false;
  c.request = nullptr;
  c.sent = 0;
  c.reader.reset();
}

void LoadWorker::schedule_open(size_t i, int64_t at_ns) {
  conns_[i].state = State::kReopen;
  conns_[i].retry_at_ns = at_ns;
  ++reopening_;
}

void LoadWorker::reopen(size_t i, int64_t delay_ns, int64_t now) {
  close_socket(i);
  schedule_open(i, now + delay_ns);
  if (delay_ns == 0) open(i, now);
}

void LoadWorker::reopen_due(int64_t now) {
  if (reopening_ == 0) return;
  for (size_t i = 0; i < conns_.size(); ++i)
    if (conns_[i].state == State::kReopen && conns_[i].retry_at_ns <= now) open(i, now);
}

void LoadWorker::watch_out(size_t i, bool on) {
  Connection& c = conns_[i];
  if (c.watching_out == on) return;
  epoll_event ev{};
  ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u32 = static_cast<uint32_t>(i);
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  c.watching_out = on;
}

void LoadWorker::become_idle(size_t i) {
  Connection& c = conns_[i];
  c.state = State::kIdle;
  if (!c.listed_idle) {
    c.listed_idle = true;
    idle_.push_back(i);
  }
}

void LoadWorker::on_connected(size_t i, int64_t now) {
  watch_out(i, false);
  become_idle(i);
}

const PreparedRequest* LoadWorker::take_request() {
  const auto& requests = *plan_.requests;
  uint64_t k = plan_.next_request->fetch_add(1, std::memory_order_relaxed);
  if (plan_.once) {
    if (k >= requests.size()) {
      exhausted_ = true;
      return nullptr;
    }
    return &requests[k];
  }
  return &requests[k % requests.size()];
}

void LoadWorker::dispatch(int64_t now) {
  // Taken from the back: the connection answered last is warmest in the caches.
  while (!idle_.empty() && !(plan_.once && exhausted_)) {
    now = now_ns();  // each send a few µs after the previous one: stamp each with its own time
    int64_t start = now;
    if (plan_.rate_per_s > 0) {
      start = slot_ns(next_slot_);
      if (start > now) return;
    }
    size_t i = idle_.back();
    idle_.pop_back();
    Connection& c = conns_[i];
    c.listed_idle = false;
    if (c.state != State::kIdle) continue;  // closed since it was listed; it lists itself again when idle
    const PreparedRequest* request = take_request();
    if (request == nullptr) {
      c.listed_idle = true;
      idle_.push_back(i);
      break;
    }
    ++next_slot_;
    c.request = request;
    c.sent = 0;
    // Open loop: latency runs from the request's slot, so a backlog on busy connections shows in it (a closed
    // loop's coordinated omission would hide it).
    c.started_ns = start;
    c.since_ns = now;
    c.state = State::kSending;
    send_more(i, now);
  }
  if (plan_.once && exhausted_) {  // nothing left to send: idle connections are done
    for (size_t i : idle_) {
      conns_[i].listed_idle = false;
      if (conns_[i].state == State::kIdle) {
        close_socket(i);
        conns_[i].state = State::kDone;
      }
    }
    idle_.clear();
  }
}

void LoadWorker::send_more(size_t i, int64_t now) {
  Connection& c = conns_[i];
  const std::string& bytes = c.request->bytes;
  while (c.sent < bytes.size()) {
    ssize_t n = ::send(c.fd, bytes.data() + c.sent, bytes.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      watch_out(i, true);
      return;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      fail(i, "closed", std::string("send: ") + std::strerror(errno), now);
      return;
    }
  }
  watch_out(i, false);
  c.state = State::kAwaiting;
}

void LoadWorker::on_event(size_t i, uint32_t events, int64_t now) {
  Connection& c = conns_[i];
  if (c.fd < 0) return;
  if (c.state == State::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close_socket(i);
      connect_failed(i, "connect to " + plan_.address_text + ": " + std::strerror(err), kConnectRetryNs, now);
      return;
    }
    if (events & (EPOLLOUT | EPOLLIN)) on_connected(i, now);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(i, now);
  if (c.fd >= 0 && c.state == State::kSending && (events & EPOLLOUT)) send_more(i, now);
}

void LoadWorker::on_readable(size_t i, int64_t now) {
  Connection& c = conns_[i];
  while (true) {
    std::span<char> room = c.reader.writable();
    ssize_t n = ::recv(c.fd, room.data(), room.size(), 0);
    if (n > 0) {
      if (!in_flight(c)) {
        // The server spoke first (an overload 503 before it closes, a 408 on an idle connection).
        fail(i, "unsolicited", "the server sent " + std::to_string(n) + " bytes with no request in flight: '" +
             std::string(room.data(), std::min<size_t>(static_cast<size_t>(n), 120)) + "'", now);
        return;
      }
      ResponseReader::Progress p = c.reader.received(static_cast<size_t>(n));
      if (p == ResponseReader::Progress::kComplete) return on_answer(i, now);
      if (p == ResponseReader::Progress::kMalformed) return fail(i, "bad_answer", c.reader.error(), now);
      if (static_cast<size_t>(n) < room.size()) return;  // drained for now
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    const int err = n < 0 ? errno : 0;
    if (!in_flight(c)) {  // an idle keep-alive connection closed by the server: open another, no harm done
      reopen(i, 0, now);
      return;
    }
    if (n == 0 && c.reader.closed() == ResponseReader::Progress::kComplete) return on_answer(i, now);
    fail(i, "closed", err ? std::string("recv: ") + std::strerror(err) : c.reader.error(), now);
    return;
  }
}

void LoadWorker::on_answer(size_t i, int64_t now) {
  Connection& c = conns_[i];
  const ResponseReader& r = c.reader;
  if (r.bytes_after_answer() > 0) {
    return fail(i, "bad_answer", std::to_string(r.bytes_after_answer()) + " bytes arrived after the answer's end "
                "(one request was in flight)", now);
  }
  const bool fully_sent = c.sent == c.request->bytes.size();
  const int status = r.status();
  std::string_view body = r.body();
  if (status != 200) {
    count_error(std::to_string(status), "HTTP " + std::to_string(status) + ": " +
                std::string(body.substr(0, 300)));
  } else if (c.request->expected_vectors > 0 && count_embedding_keys(body) != c.request->expected_vectors) {
    count_error("wrong_vector_count", "expected " + std::to_string(c.request->expected_vectors) +
                " vectors, the answer holds " + std::to_string(count_embedding_keys(body)) + ": " +
                std::string(body.substr(0, 200)));
  } else if (measuring(now)) {
    result_.latency.record(static_cast<uint64_t>(std::max<int64_t>(0, now - c.started_ns)));
    ++result_.ok;
    result_.vectors += c.request->expected_vectors;
    if (auto tokens = find_prompt_tokens(body)) {
      result_.tokens += *tokens;
      ++result_.ok_with_tokens;
    }
    result_.last_answer_ns = now;
  }
  if (r.keep_alive() && fully_sent) {
    c.reader.reset();
    c.request = nullptr;
    become_idle(i);
  } else {
    reopen(i, 0, now);  // the server closes this one (or the request was cut short by an early answer)
  }
}

void LoadWorker::fail(size_t i, const std::string& kind, const std::string& message, int64_t now) {
  count_error(kind, message);
  reopen(i, 0, now);
}

void LoadWorker::count_error(const std::string& kind, const std::string& message) {
  ++result_.errors[kind];
  if (messages_[kind]++ < kMessagesPerKind) {
    std::fprintf(stderr, "embedserve_http_load: worker %d: %s: %s\n", plan_.worker_index, kind.c_str(),
                 message.c_str());
  }
}

void LoadWorker::check_timeouts(int64_t now) {
  for (size_t i = 0; i < conns_.size(); ++i) {
    Connection& c = conns_[i];
    if (now - c.since_ns < plan_.timeout_ns) continue;
    if (c.state == State::kConnecting) {
      close_socket(i);
      connect_failed(i, "connect to " + plan_.address_text + " took longer than --timeout", 0, now);
    } else if (in_flight(c)) {
      fail(i, "timeout", "no answer within --timeout (" + std::to_string(plan_.timeout_ns / kMs) + " ms)", now);
    }
  }
}

}  // namespace

Status run_worker(const RunPlan& plan, int connections, WorkerResult& result) {
  LoadWorker worker(plan, connections, result);
  return worker.run();
}

}  // namespace embedserve::load
