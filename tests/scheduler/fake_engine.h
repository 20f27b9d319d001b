// FakeEngine: an Engine whose vector is a deterministic function of one sequence's tokens, with a gate
// and a delay so scheduler tests can hold a batch in flight, and chunked prefill on request. No model needed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <map>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "text/matryoshka.h"

namespace embedserve::testing {

inline EngineInfo fake_info(size_t workspace_tokens, int hidden = 4, bool chunked_prefill = false) {
  EngineInfo info;
  info.model_id = "fake";
  info.architecture = "Fake";
  info.dtype = "f32";
  info.hidden_size = hidden;
  info.vocab_size = 1000;
  info.max_position_embeddings = 4096;
  info.workspace_tokens = workspace_tokens;
  info.chunked_prefill = chunked_prefill;
  return info;
}

// `len` token ids from `first`, all below fake_info's vocabulary (1,000): distinct inputs for distinct `first`s.
inline std::vector<int32_t> fake_ids(int32_t first, size_t len) {
  std::vector<int32_t> v(len);
  for (size_t i = 0; i < len; ++i) v[i] = static_cast<int32_t>((first + i * 7) % 900);
  return v;
}

// The vector of one sequence: depends on its ids alone, so "same input, same vector" is checkable.
inline std::vector<float> fake_vector(std::span<const int32_t> ids, int hidden) {
  std::vector<float> v(hidden);
  for (int k = 0; k < hidden; ++k) {
    double acc = k + 1;
    for (size_t t = 0; t < ids.size(); ++t) acc += (ids[t] + 1) * 0.001 * ((t + k) % 7 + 1);
    v[k] = static_cast<float>(acc);
  }
  l2_normalize(v);
  return v;
}

class FakeEngine : public Engine {
 public:
  static constexpr int32_t kFailingId = 999;  // a batch holding this id fails, as a backend error would

  // With `chunked_prefill`, takes long inputs in chunks, keeping each input's ids so far as a model keeps keys.
  explicit FakeEngine(size_t workspace_tokens, int hidden = 4, bool chunked_prefill = false)
      : Engine(fake_info(workspace_tokens, hidden, chunked_prefill)) {}

  // While closed, run() blocks at its start; tests use it to keep a batch in flight.
  void close_gate() { std::lock_guard<std::mutex> l(mu_); gate_open_ = false; }
  void open_gate() { { std::lock_guard<std::mutex> l(mu_); gate_open_ = true; } cv_.notify_all(); }
  // Blocks until `n` batches have entered run().
  void wait_for_batches(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return batches_.size() >= n; });
  }
  void set_delay(std::chrono::microseconds d) { delay_ = d; }
  std::vector<SequenceBatch> batches() const { std::lock_guard<std::mutex> l(mu_); return batches_; }

  void end_sequence(uint64_t sequence) override { std::lock_guard<std::mutex> l(mu_); in_progress_.erase(sequence); }
  size_t sequences_in_progress() const override { std::lock_guard<std::mutex> l(mu_); return in_progress_.size(); }

 protected:
  Status run(const SequenceBatch& batch, std::span<float> out) override {
    {
      std::unique_lock<std::mutex> l(mu_);
      batches_.push_back(batch);
      cv_.notify_all();
      cv_.wait(l, [&] { return gate_open_; });
    }
    if (delay_.count()) std::this_thread::sleep_for(delay_);
    for (int32_t id : batch.token_ids)
      if (id == kFailingId) {
        if (batch.chunk) end_sequence(batch.chunk->sequence);  // as a real engine frees a failed chunk's input
        return internal_error("fake backend failure");
      }
    const int h = info().hidden_size;
    if (batch.chunk) {
      std::lock_guard<std::mutex> l(mu_);
      std::vector<int32_t>& so_far = in_progress_[batch.chunk->sequence];
      if (batch.chunk->start == 0) so_far.clear();
      if (so_far.size() != batch.chunk->start) return internal_error("fake: a chunk does not continue its input");
      so_far.insert(so_far.end(), batch.token_ids.begin(), batch.token_ids.end());
      if (!batch.ends_sequences()) return Status();
      auto v = fake_vector(so_far, h);
      std::copy(v.begin(), v.end(), out.begin());
      in_progress_.erase(batch.chunk->sequence);
      return Status();
    }
    for (size_t i = 0; i < batch.num_sequences(); ++i) {
      auto v = fake_vector(batch.sequence(i), h);
      std::copy(v.begin(), v.end(), out.begin() + i * h);
    }
    return Status();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool gate_open_ = true;
  std::chrono::microseconds delay_{0};
  std::vector<SequenceBatch> batches_;
  std::map<uint64_t, std::vector<int32_t>> in_progress_;  // chunked inputs' ids so far, by sequence
};

}  // namespace embedserve::testing
