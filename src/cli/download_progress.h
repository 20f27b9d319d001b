// DownloadReporter: what `serve` and `embed` show while model files download, on a terminal or in a log.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cli/progress_bar.h"

namespace embedserve::cli {

// On a terminal a bar per file (bytes, percentage, rate, ETA). In a log, where a bar's carriage returns would be
// noise, the same figures as lines: one when a file starts (with its size), one every `log_interval` while it
// runs, and one when it is complete. Called from the downloading thread only.
class DownloadReporter {
 public:
  // `prefix` starts every log line ("embedserve serve: ").
  explicit DownloadReporter(std::string prefix, bool terminal = ProgressBar::stderr_is_terminal(),
                            std::chrono::milliseconds log_interval = std::chrono::seconds(5));
  ~DownloadReporter();

  void update(const std::string& file, uint64_t bytes_done, uint64_t bytes_total);
  // Ends the current file's bar or line (the download finished, failed or stopped).
  void finish();

 private:
  void end_file(bool complete);

  std::string prefix_;
  bool terminal_;
  std::chrono::milliseconds log_interval_;
  std::string file_;
  uint64_t done_ = 0, total_ = 0, first_done_ = 0;
  std::chrono::steady_clock::time_point started_, last_line_;
  std::unique_ptr<ProgressBar> bar_;
};

}  // namespace embedserve::cli
