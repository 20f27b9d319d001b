// LatencyHistogram: bucket layout, recording, merging and percentiles.
#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace embedserve::load {

size_t LatencyHistogram::bucket_of(uint64_t value) {
  if (value < 2 * kSubBuckets) return static_cast<size_t>(value);  // the first two groups are one value wide
  // The top kSubBucketBits + 1 bits of the value: its leading one (the group) and the sub-bucket below it.
  const int top_bit = std::bit_width(value) - 1;  // ≥ kSubBucketBits + 1
  const int shift = top_bit - kSubBucketBits;
  const uint64_t mantissa = value >> shift;  // in [kSubBuckets, 2 * kSubBuckets)
  return static_cast<size_t>((shift + 1) * kSubBuckets + (mantissa - kSubBuckets));
}

uint64_t LatencyHistogram::highest_in_bucket(size_t bucket) {
  const uint64_t group = bucket / kSubBuckets;
  const uint64_t sub = bucket % kSubBuckets;
  if (group <= 1) return bucket;
  const uint64_t shift = group - 1;
  const uint64_t lowest = (kSubBuckets + sub) << shift;
  return lowest + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(uint64_t value) {
  ++counts_[bucket_of(value)];
  ++count_;
  sum_ += value;
  max_ = std::max(max_, value);
  min_ = std::min(min_, value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the value asked for, 1-based: ceil(q * count), at least the first value.
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(highest_in_bucket(i), max_);
  }
  return max_;
}

}  // namespace embedserve::load
