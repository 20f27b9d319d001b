// LatencyHistogram: request latencies in HdrHistogram's log-linear buckets (relative error ≤ 2^-7), mergeable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace embedserve::load {

// Each power of two is split into 128 equal sub-buckets, so a bucket is at most 1/128 (0.78 %) of the values it
// holds wide, from 1 ns to 2^64 ns, in 7,424 counters (58 KiB) — small enough for one per thread, merged at the
// end, with no lock on the hot path. Values below 256 are exact.
class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;
  static constexpr size_t kBuckets = (64 - kSubBucketBits + 1) * kSubBuckets;

  LatencyHistogram() : counts_(kBuckets, 0) {}

  void record(uint64_t value);
  void merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

  // The smallest value v (a bucket's upper end, never above the largest value recorded) such that at least a
  // fraction q of the values are ≤ v: q = 0.5 is the median, q = 1 the maximum; 0 when nothing was recorded.
  uint64_t percentile(double q) const;

  // The bucket a value falls in, and the largest value of a bucket (exposed for the tests of the layout).
  static size_t bucket_of(uint64_t value);
  static uint64_t highest_in_bucket(size_t bucket);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
  uint64_t min_ = UINT64_MAX;
  // Sums of nanosecond latencies stay far below 2^64 (584 years of request time).
  uint64_t sum_ = 0;
};

}  // namespace embedserve::load
