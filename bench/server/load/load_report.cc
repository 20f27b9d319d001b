// Rendering the run's JSON line by hand: a dozen numbers need no JSON library.
#include "load_report.h"

#include <cstdio>

namespace embedserve::load {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string number(double value, const char* format = "%.3f") {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

std::string ms(uint64_t ns) { return number(static_cast<double>(ns) / 1e6, "%.3f"); }

}  // namespace

uint64_t total_errors(const LoadReport& report) {
  uint64_t n = 0;
  for (const auto& [kind, count] : report.errors) n += count;
  return n;
}

std::string render_report(const LoadReport& r) {
  const double per_s = r.seconds > 0 ? 1.0 / r.seconds : 0.0;
  std::string errors_by_kind = "{";
  for (const auto& [kind, count] : r.errors) {
    if (errors_by_kind.size() > 1) errors_by_kind += ", ";
    errors_by_kind += json_string(kind) + ": " + std::to_string(count);
  }
  errors_by_kind += "}";
  std::string s = "{\"tool\": \"embedserve_http_load\"";
  s += ", \"workload\": " + json_string(r.workload);
  s += ", \"mode\": " + json_string(r.mode);
  s += ", \"connections\": " + std::to_string(r.connections);
  s += ", \"threads\": " + std::to_string(r.threads);
  s += ", \"rate\": " + (r.rate ? number(*r.rate, "%.1f") : std::string("null"));
  s += ", \"seconds\": " + number(r.seconds);
  s += ", \"requests\": " + std::to_string(r.requests);
  s += ", \"errors\": " + std::to_string(total_errors(r));
  s += ", \"errors_by_kind\": " + errors_by_kind;
  s += ", \"requests_per_s\": " + number(static_cast<double>(r.requests) * per_s, "%.1f");
  s += ", \"inputs\": " + std::to_string(r.inputs);
  s += ", \"tokens\": " + (r.tokens ? std::to_string(*r.tokens) : std::string("null"));
  s += ", \"tokens_per_s\": " +
       (r.tokens ? number(static_cast<double>(*r.tokens) * per_s, "%.1f") : std::string("null"));
  s += ", \"p50_ms\": " + ms(r.latency.percentile(0.50));
  s += ", \"p90_ms\": " + ms(r.latency.percentile(0.90));
  s += ", \"p99_ms\": " + ms(r.latency.percentile(0.99));
  s += ", \"p999_ms\": " + ms(r.latency.percentile(0.999));
  s += ", \"max_ms\": " + ms(r.latency.max());
  s += ", \"mean_ms\": " + number(r.latency.mean() / 1e6);
  s += "}";
  return s;
}

}  // namespace embedserve::load
