// A one-line progress bar with rate and ETA on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace embedserve::cli {

class ProgressBar {
 public:
  // `unit` names what is counted ("texts"); the unit "B" prints sizes as KiB/MiB/GiB. `total` 0 means
  // unknown (no percentage or ETA). Disabled bars (stderr redirected, the default there) draw nothing,
  // so logs never fill with carriage returns.
  ProgressBar(std::string label, uint64_t total, std::string unit, bool enabled = stderr_is_terminal());
  ~ProgressBar();

  // Records progress; redraws at most every 100 ms. `note` is appended to the line (e.g. "12,345 tok/s").
  void update(uint64_t done, const std::string& note = "");
  // Redraws now with what was last recorded: the first frame at once, and frames while nothing moves (a long
  // batch), so the elapsed time keeps counting.
  void redraw(const std::string& note = "");
  // Draws the final state and ends the line.
  void finish(const std::string& note = "");

  bool enabled() const { return enabled_; }
  static bool stderr_is_terminal();

  // The line for `done` of `total` after `elapsed_s` seconds, `width` columns of bar. Pure: tested alone.
  static std::string render(const std::string& label, uint64_t done, uint64_t total, const std::string& unit,
                            double elapsed_s, int width, const std::string& note = "");
  // "0:07", "1:02:03"
  static std::string format_duration(double seconds);
  // "512", or with unit "B": "3.0 MiB"
  static std::string format_amount(double v, const std::string& unit);

 private:
  void draw(const std::string& note);

  std::string label_;
  uint64_t total_;
  std::string unit_;
  bool enabled_;
  bool finished_ = false;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace embedserve::cli
