// Progress bar rendering: fraction, rate and ETA on one carriage-returned stderr line.
#include "cli/progress_bar.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace embedserve::cli {
std::string ProgressBar::format_amount(double v, const std::string& unit) {
  char buf[64];
  if (unit == "B") {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024.0 && u < 4) { v /= 1024.0; ++u; }
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit, bool enabled)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), enabled_(enabled),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (enabled_ && !finished_) std::fputc('\n', stderr);  // leave the cursor on a fresh line after an error
}

bool ProgressBar::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string ProgressBar::render(const std::string& label, uint64_t done, uint64_t total, const std::string& unit,
                                double elapsed_s, int width, const std::string& note) {
  std::string line = label + " ";
  const double rate = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0.0;
  const std::string unit_suffix = unit == "B" ? "" : " " + unit;
  if (total > 0) {
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
    const int filled = static_cast<int>(frac * width);
    line.push_back('[');
    line.append(filled, '=');
    if (filled < width) line.push_back('>');
    line.append(width - filled - (filled < width ? 1 : 0), ' ');
    line += "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3.0f%% ", frac * 100.0);
    line += pct;
    line += format_amount(static_cast<double>(done), unit) + "/" + format_amount(static_cast<double>(total), unit) +
            unit_suffix;
  } else {
    line += format_amount(static_cast<double>(done), unit) + unit_suffix;
  }
  line += "  " + format_amount(rate, unit) + (unit == "B" ? "/s" : " " + unit + "/s");
  line += "  elapsed " + format_duration(elapsed_s);
  if (total > 0) {
    const double remaining = done >= total ? 0.0 : (rate > 0 ? (total - done) / rate : NAN);
    line += "  ETA " + format_duration(remaining);
  }
  if (!note.empty()) line += "  " + note;
  return line;
}

void ProgressBar::draw(const std::string& note) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // "\r" returns to the line start; "\x1b[K" clears what a longer previous line left behind.
  std::fprintf(stderr, "\r%s\x1b[K", render(label_, done_, total_, unit_, elapsed, 30, note).c_str());
  std::fflush(stderr);
}

void ProgressBar::update(uint64_t done, const std::string& note) {
  done_ = done;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && done != total_) return;
  last_draw_ = now;
  draw(note);
}

void ProgressBar::redraw(const std::string& note) {
  if (!enabled_ || finished_) return;
  last_draw_ = std::chrono::steady_clock::now();
  draw(note);
}

void ProgressBar::finish(const std::string& note) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(note);
  std::fputc('\n', stderr);
}

}  // namespace embedserve::cli
