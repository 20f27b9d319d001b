// The activations one forward pass writes, allocated once for the largest batch and reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace embedserve {

// A float buffer that grows but never shrinks and is not zero-filled (every op writes before it reads).
class FloatBuffer {
 public:
  float* get(size_t n) {
    if (n > capacity_) {
      data_.reset(new float[n]);
      capacity_ = n;
    }
    return data_.get();
  }
  float* data() { return data_.get(); }
  size_t bytes() const { return capacity_ * sizeof(float); }

 private:
  std::unique_ptr<float[]> data_;
  size_t capacity_ = 0;
};

// Shapes for a batch of n tokens (or, past the last layer's K/V, of the pooled rows only).
struct Qwen3Workspace {
  FloatBuffer x;     // f32 [n, hidden]: the residual stream
  FloatBuffer h;     // f32 [n, hidden]: normed input of a block, then a block's output
  FloatBuffer q;     // f32 [n, heads * head_dim]
  FloatBuffer k;     // f32 [n, kv_heads * head_dim]
  FloatBuffer v;     // f32 [n, kv_heads * head_dim]
  FloatBuffer attn;  // f32 [n, heads * head_dim]
  FloatBuffer gate;  // f32 [n, intermediate]
  FloatBuffer up;    // f32 [n, intermediate]
  FloatBuffer cos;   // f32 [n, head_dim / 2]
  FloatBuffer sin;   // f32 [n, head_dim / 2]
  FloatBuffer q_cos;  // f32 [n_seqs, head_dim / 2]: the pooled rows' angles, for the last layer's queries
  FloatBuffer q_sin;  // f32 [n_seqs, head_dim / 2]
  // The rows a layer currently carries and where they sit in their sequences.
  int64_t n_rows = 0;
  std::vector<int32_t> positions;    // [n_tokens] position of each token within its sequence
  std::vector<int32_t> kv_offsets;   // [n_seqs + 1] the batch's sequence offsets
  std::vector<int32_t> row_offsets;  // [n_seqs + 1] rows of each sequence among the rows carried
  std::vector<int32_t> row_positions;  // [n_rows] position of each carried row

  size_t bytes() const {
    return x.bytes() + h.bytes() + q.bytes() + k.bytes() + v.bytes() + attn.bytes() + gate.bytes() + up.bytes() +
           cos.bytes() + sin.bytes() + q_cos.bytes() + q_sin.bytes();
  }
};

}  // namespace embedserve
