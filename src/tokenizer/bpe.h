// Byte-level BPE: merge ranks in an open-addressing table, word encoding by lowest-rank-first merging.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace embedserve::tokenizer {

// (left id, right id) -> (rank, merged id), packed into one uint64 key: one multiply-shift hash and,
// almost always, one cache line per lookup. Built once at load, read-only after.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;  // (left << 32) | right; kEmpty marks a free slot
    uint32_t rank;
    int32_t merged;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  void reserve(size_t n);
  // False when the pair is already present (a duplicate merge; HF keeps the first, lower rank).
  bool insert(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  const Entry* find(int32_t left, int32_t right) const {
    const uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static uint64_t pack(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_); }

  std::vector<Entry> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

class Bpe {
 public:
  // vocab: byte-string -> id (token strings already mapped back to raw bytes); merges: pairs of
  // byte-strings in rank order. Every single byte must be in the vocabulary (byte-level BPE).
  static StatusOr<Bpe> build(const std::unordered_map<std::string, int32_t>& vocab,
                             const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges);

  // Appends the ids of one pre-tokenized piece (raw bytes) to `out`. Allocation-free once the
  // calling thread's scratch buffers have grown to the longest word seen.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  void merge_small(std::string_view word, std::vector<int32_t>& out) const;
  void merge_large(std::string_view word, std::vector<int32_t>& out) const;

  std::array<int32_t, 256> byte_ids_{};
  MergeTable merges_;
  bool ignore_merges_ = false;
  const std::unordered_map<std::string, int32_t>* vocab_ = nullptr;  // for ignore_merges only
};

}  // namespace embedserve::tokenizer
