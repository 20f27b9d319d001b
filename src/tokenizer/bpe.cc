// BPE word encoding, same result as HF's Word::merge_all: repeatedly merge the adjacent pair of lowest
// rank, the leftmost one on ties, until no adjacent pair has a merge.
#include "tokenizer/bpe.h"

#include <algorithm>
#include <limits>

namespace embedserve::tokenizer {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;  // load factor <= 0.5 keeps probe chains short
  slots_.assign(cap, Entry{kEmpty, 0, 0});
  mask_ = cap - 1;
  shift_ = 64 - __builtin_ctzll(cap);
  size_ = 0;
}

bool MergeTable::insert(int32_t left, int32_t right, uint32_t rank, int32_t merged) {
  const uint64_t key = pack(left, right);
  size_t i = slot(key);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) return false;
    i = (i + 1) & mask_;
  }
  slots_[i] = Entry{key, rank, merged};
  ++size_;
  return true;
}

StatusOr<Bpe> Bpe::build(const std::unordered_map<std::string, int32_t>& vocab,
                         const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges) {
  Bpe bpe;
  for (int b = 0; b < 256; ++b) {
    auto it = vocab.find(std::string(1, static_cast<char>(b)));
    if (it == vocab.end())
      return unimplemented("model.vocab has no token for byte 0x" + std::to_string(b) +
                           ": only byte-level BPE vocabularies (all 256 bytes present) are supported");
    bpe.byte_ids_[b] = it->second;
  }
  bpe.merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    auto ia = vocab.find(a), ib = vocab.find(b), im = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end())
      return invalid_argument("model.merges[" + std::to_string(r) + "] uses a token that is not in model.vocab");
    bpe.merges_.insert(ia->second, ib->second, static_cast<uint32_t>(r), im->second);
  }
  bpe.ignore_merges_ = ignore_merges;
  bpe.vocab_ = &vocab;
  return bpe;
}

void Bpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    auto it = vocab_->find(std::string(word));
    if (it != vocab_->end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Short words: a dense array of symbols and the rank of each adjacent pair; each merge rescans
  // the ranks (cheap integer compares in one or two cache lines) and refreshes two of them.
  if (word.size() <= 128) merge_small(word, out);
  else merge_large(word, out);
}

void Bpe::merge_small(std::string_view word, std::vector<int32_t>& out) const {
  constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  int32_t ids[128];
  uint32_t ranks[128];   // ranks[i]: rank of (ids[i], ids[i+1])
  int32_t merged[128];   // merged[i]: the id that pair becomes
  size_t n = word.size();
  for (size_t i = 0; i < n; ++i) ids[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  auto refresh = [&](size_t i) {
    const MergeTable::Entry* e = merges_.find(ids[i], ids[i + 1]);
    ranks[i] = e ? e->rank : kNone;
    merged[i] = e ? e->merged : -1;
  };
  for (size_t i = 0; i + 1 < n; ++i) refresh(i);
  while (n > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;  // strict: the leftmost of equal ranks wins
    if (ranks[best] == kNone) break;
    ids[best] = merged[best];
    std::copy(ids + best + 2, ids + n, ids + best + 1);
    if (best + 2 < n - 1) {  // pairs right of the merged one shift left by one
      std::copy(ranks + best + 2, ranks + n - 1, ranks + best + 1);
      std::copy(merged + best + 2, merged + n - 1, merged + best + 1);
    }
    --n;
    if (best + 1 < n) refresh(best);
    if (best > 0) refresh(best - 1);
  }
  out.insert(out.end(), ids, ids + n);
}

void Bpe::merge_large(std::string_view word, std::vector<int32_t>& out) const {
  // Long words (runs of CJK letters or symbols can be thousands of bytes): a doubly linked list of
  // symbols and a min-heap of candidate merges, as HF does, so the cost is O(n log n), not O(n^2).
  struct Symbol {
    int32_t id, prev, next;
  };
  struct Candidate {
    uint32_t rank, pos;
    int32_t merged;
    bool operator<(const Candidate& o) const {  // for std::push_heap: "less" = lower priority
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  thread_local std::vector<Symbol> syms;
  thread_local std::vector<Candidate> heap;
  const int32_t n = static_cast<int32_t>(word.size());
  syms.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) syms[i] = {byte_ids_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  auto push = [&](int32_t pos) {
    const int32_t next = syms[pos].next;
    if (next < 0) return;
    if (const MergeTable::Entry* e = merges_.find(syms[pos].id, syms[next].id)) {
      heap.push_back({e->rank, static_cast<uint32_t>(pos), e->merged});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = syms[c.pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or now the last symbol
    Symbol& right = syms[left.next];
    const MergeTable::Entry* e = merges_.find(left.id, right.id);
    if (!e || e->merged != c.merged) continue;  // stale: one side changed since it was queued
    left.id = c.merged;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = static_cast<int32_t>(c.pos);
    if (left.prev >= 0) push(left.prev);
    push(static_cast<int32_t>(c.pos));
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

}  // namespace embedserve::tokenizer
