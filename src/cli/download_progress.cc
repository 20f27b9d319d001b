// DownloadReporter: a bar per file on a terminal, progress lines in a log.
#include "cli/download_progress.h"

#include <cstdio>

namespace embedserve::cli {

DownloadReporter::DownloadReporter(std::string prefix, bool terminal, std::chrono::milliseconds log_interval)
    : prefix_(std::move(prefix)), terminal_(terminal), log_interval_(log_interval) {}

DownloadReporter::~DownloadReporter() { finish(); }

void DownloadReporter::update(const std::string& file, uint64_t bytes_done, uint64_t bytes_total) {
  const auto now = std::chrono::steady_clock::now();
  if (file != file_) {
    if (!file_.empty()) end_file(total_ > 0 && done_ >= total_);
    file_ = file;
    first_done_ = bytes_done;  // a resumed download starts part-way: the rate counts this run's bytes only
    started_ = last_line_ = now;
    if (terminal_) {
      bar_ = std::make_unique<ProgressBar>("downloading " + file, bytes_total, "B", true);
    } else {
      std::fprintf(stderr, "%sdownloading %s (%s)\n", prefix_.c_str(), file.c_str(),
                   bytes_total ? ProgressBar::format_amount(static_cast<double>(bytes_total), "B").c_str() : "size unknown");
    }
  }
  done_ = bytes_done;
  total_ = bytes_total;
  if (bar_) {
    bar_->update(bytes_done);
  } else if (now - last_line_ >= log_interval_ && !(total_ && done_ >= total_)) {
    last_line_ = now;
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done_ - first_done_) / elapsed : 0.0;
    std::string line = prefix_ + "downloading " + file_ + ": " + ProgressBar::format_amount(static_cast<double>(done_), "B");
    if (total_) {
      char pct[16];
      std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * static_cast<double>(done_) / static_cast<double>(total_));
      line += " of " + ProgressBar::format_amount(static_cast<double>(total_), "B") + pct;
    }
    line += ", " + ProgressBar::format_amount(rate, "B") + "/s";
    if (total_ && rate > 0) line += ", ETA " + ProgressBar::format_duration(static_cast<double>(total_ - done_) / rate);
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  if (total_ && done_ >= total_) {
    end_file(true);
    file_.clear();
  }
}

void DownloadReporter::finish() {
  if (file_.empty()) return;
  end_file(total_ > 0 && done_ >= total_);
  file_.clear();
}

void DownloadReporter::end_file(bool complete) {
  if (bar_) {
    bar_->finish();
    bar_.reset();
    return;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_ - first_done_) / elapsed : 0.0;
  std::string line = prefix_ + (complete ? "downloaded " : "stopped downloading ") + file_ + ": " +
                     ProgressBar::format_amount(static_cast<double>(done_), "B");
  if (total_) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%.0f%%)", 100.0 * static_cast<double>(done_) / static_cast<double>(total_));
    line += " of " + ProgressBar::format_amount(static_cast<double>(total_), "B") + pct;
  }
  line += " in " + ProgressBar::format_duration(elapsed) + ", " + ProgressBar::format_amount(rate, "B") + "/s";
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace embedserve::cli
