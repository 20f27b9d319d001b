// embedserve_http_load: a native HTTP/1.1 load generator for the HTTP workloads of docs/PERFORMANCE.md (flags,
// set-up, the worker threads, the report).
#include <netdb.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "load_report.h"
#include "load_worker.h"
#include "request_set.h"

namespace embedserve::load {
namespace {

constexpr const char* kUsage = R"(embedserve_http_load: replays HTTP requests against a server over keep-alive connections
and prints one JSON line (requests, errors, requests_per_s, tokens_per_s, p50/p90/p99/p999/max latency in ms),
the keys bench/server/http_load.py prints. Every answer is checked: status 200 and, for embeddings, the number of
vectors.
Exits 1 when any request failed (or none succeeded), 2 on a usage error.

  embedserve_http_load --url http://127.0.0.1:30000 --bodies FILE [flags]
  embedserve_http_load --url http://127.0.0.1:30000 --get /health [flags]

The request file (--bodies) has one request per line, `METHOD PATH INPUTS BODY`; bench/server/http_load.py
writes it for its workloads (`http_load.py queries --write-bodies FILE`, `http_load.py bulk --write-bodies FILE`).

  --url URL          the server, http://HOST[:PORT][/PREFIX] (default http://127.0.0.1:30000)
  --bodies FILE      the requests to replay, in turn (each connection takes the next one when it is free)
  --get PATH         instead of --bodies: GET PATH every time (e.g. /health, to measure HTTP alone)
  --connections N    keep-alive connections, one request in flight on each (default 128)
  --threads T        threads the connections are spread over (default: min(N, max(1, cores / 4)))
  --duration S       seconds measured after the warm-up (default 10); with --once, a limit (default 600)
  --warmup S         seconds run before measuring, answers not counted (default 1; not with --once)
  --rate R           open loop: R requests/s in all, latency counted from each request's slot (default:
                     closed loop, each connection sends its next request when the previous is answered)
  --once             send each request of the file once, in order, and stop when all are answered (bulk)
  --timeout S        a request not answered in S seconds fails and its connection reopens (default 60)
  --api-key KEY      send Authorization: Bearer KEY
  --workload NAME    the label in the JSON line (default: the request file's name, or the GET path)
)";

struct Options {
  std::string url = "http://127.0.0.1:30000";
  std::string bodies;
  std::string get;
  int connections = 128;
  int threads = 0;
  double duration = -1;
  double warmup = 1;
  double rate = 0;
  bool once = false;
  double timeout = 60;
  std::string api_key;
  std::string workload;
};

Status parse_number(const std::string& flag, const std::string& text, double min, double& out) {
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size() || !(value >= min))
    return invalid_argument(flag + " '" + text + "' must be a number of at least " + std::to_string(min).substr(0, 3));
  out = value;
  return Status::ok_status();
}

Status parse_count(const std::string& flag, const std::string& text, int& out) {
  int value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size() || value < 1)
    return invalid_argument(flag + " '" + text + "' must be a whole number of at least 1");
  out = value;
  return Status::ok_status();
}

StatusOr<Options> parse_flags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--once") {
      o.once = true;
      continue;
    }
    if (i + 1 >= argc) return invalid_argument(flag + " needs a value (--help lists the flags)");
    const std::string value = argv[++i];
    Status s;
    if (flag == "--url") o.url = value;
    else if (flag == "--bodies") o.bodies = value;
    else if (flag == "--get") o.get = value;
    else if (flag == "--connections") s = parse_count(flag, value, o.connections);
    else if (flag == "--threads") s = parse_count(flag, value, o.threads);
    else if (flag == "--duration") s = parse_number(flag, value, 0.001, o.duration);
    else if (flag == "--warmup") s = parse_number(flag, value, 0, o.warmup);
    else if (flag == "--rate") s = parse_number(flag, value, 0.001, o.rate);
    else if (flag == "--timeout") s = parse_number(flag, value, 0.001, o.timeout);
    else if (flag == "--api-key") o.api_key = value;
    else if (flag == "--workload") o.workload = value;
    else return invalid_argument("unknown flag '" + flag + "' (--help lists the flags)");
    if (!s.ok()) return s;
  }
  if (o.bodies.empty() == o.get.empty()) return invalid_argument("give one of --bodies FILE and --get PATH");
  if (!o.get.empty() && o.get.front() != '/') return invalid_argument("--get '" + o.get + "' must start with /");
  if (o.once && !o.get.empty()) return invalid_argument("--once replays a request file: it needs --bodies");
  if (o.duration < 0) o.duration = o.once ? 600 : 10;
  if (o.threads == 0) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.threads = std::max(1, cores / 4);  // the rest for the server under test, on the same machine
  }
  o.threads = std::min(o.threads, o.connections);
  if (o.workload.empty()) {
    o.workload = o.get.empty() ? o.bodies.substr(o.bodies.find_last_of('/') + 1) : "GET " + o.get;
  }
  return o;
}

// Lets this process open the connections asked for (the soft limit is often 1,024).
void raise_open_file_limit(int connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = static_cast<rlim_t>(connections) + 64;
  if (lim.rlim_cur >= want) return;
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  setrlimit(RLIMIT_NOFILE, &lim);
}

Status resolve(const Target& target, RunPlan& plan) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(target.host.c_str(), target.port.c_str(), &hints, &found); rc != 0)
    return not_found("cannot resolve '" + target.host + "': " + gai_strerror(rc));
  std::memcpy(&plan.address, found->ai_addr, found->ai_addrlen);
  plan.address_len = found->ai_addrlen;
  freeaddrinfo(found);
  plan.address_text = target.host + ":" + target.port;
  return Status::ok_status();
}

int run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  }
  auto options = parse_flags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "embedserve_http_load: %s\n", options.status().message().c_str());
    return 2;
  }
  const Options& o = *options;
  auto target = parse_url(o.url);
  if (!target.ok()) {
    std::fprintf(stderr, "embedserve_http_load: %s\n", target.status().message().c_str());
    return 2;
  }
  std::vector<PreparedRequest> requests;
  if (o.get.empty()) {
    auto loaded = load_request_file(o.bodies, *target, o.api_key);
    if (!loaded.ok()) {
      std::fprintf(stderr, "embedserve_http_load: %s\n", loaded.status().message().c_str());
      return 2;
    }
    requests = std::move(*loaded);
  } else {
    requests.push_back(prepare_request("GET", o.get, "", 0, *target, o.api_key));
  }
  RunPlan base;
  if (Status s = resolve(*target, base); !s.ok()) {
    std::fprintf(stderr, "embedserve_http_load: %s\n", s.message().c_str());
    return 2;
  }
  raise_open_file_limit(o.connections);

  std::atomic<uint64_t> next_request{0};
  base.requests = &requests;
  base.once = o.once;
  base.timeout_ns = static_cast<int64_t>(o.timeout * 1e9);
  base.next_request = &next_request;
  base.start_ns = now_ns();
  base.measure_from_ns = base.start_ns + (o.once ? 0 : static_cast<int64_t>(o.warmup * 1e9));
  base.end_ns = base.measure_from_ns + static_cast<int64_t>(o.duration * 1e9);

  std::vector<RunPlan> plans(static_cast<size_t>(o.threads), base);
  std::vector<WorkerResult> results(plans.size());
  std::vector<Status> statuses(plans.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    // Connections are dealt out as evenly as they go; an open loop's rate follows each worker's share.
    const int mine = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
    RunPlan& plan = plans[static_cast<size_t>(t)];
    plan.worker_index = t;
    if (o.rate > 0) {
      plan.rate_per_s = o.rate * mine / o.connections;
      plan.rate_offset_ns = static_cast<int64_t>(1e9 / plan.rate_per_s * t / o.threads);
    }
    threads.emplace_back([&, t, mine] { statuses[t] = run_worker(plans[t], mine, results[t]); });
  }
  for (auto& th : threads) th.join();
  for (const Status& s : statuses) {
    if (!s.ok()) {
      std::fprintf(stderr, "embedserve_http_load: %s\n", s.message().c_str());
      return 1;
    }
  }

  LoadReport report;
  report.workload = o.workload;
  report.mode = o.once ? "once" : o.rate > 0 ? "open" : "closed";
  report.connections = o.connections;
  report.threads = o.threads;
  if (o.rate > 0) report.rate = o.rate;
  uint64_t with_tokens = 0, tokens = 0;
  int64_t last_answer = base.start_ns;
  for (const WorkerResult& r : results) {
    report.latency.merge(r.latency);
    report.requests += r.ok;
    report.inputs += r.vectors;
    tokens += r.tokens;
    with_tokens += r.ok_with_tokens;
    for (const auto& [kind, count] : r.errors) report.errors[kind] += count;
    last_answer = std::max(last_answer, r.last_answer_ns);
  }
  if (report.requests > 0 && with_tokens == report.requests) report.tokens = tokens;
  if (o.once) {
    const uint64_t handed_out = std::min<uint64_t>(next_request.load(), requests.size());
    if (handed_out < requests.size()) report.errors["not_sent"] += requests.size() - handed_out;
    report.seconds = static_cast<double>(last_answer - base.start_ns) / 1e9;
  } else {
    report.seconds = o.duration;
  }
  std::printf("%s\n", render_report(report).c_str());
  std::fflush(stdout);
  return total_errors(report) == 0 && report.requests > 0 ? 0 : 1;
}

}  // namespace
}  // namespace embedserve::load

int main(int argc, char** argv) { return embedserve::load::run(argc, argv); }
