// What several engine tests share: embedding inputs as one batch, and a small model whose GEMMs are wide enough for
// the BLAS kernels and two tensor-parallel ranks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/engine.h"
#include "tiny_qwen3.h"

namespace embedserve::testing {

// Inputs as one SequenceBatch through Engine::embed, the vectors NaN-poisoned first so a row the engine never wrote
// shows.
inline std::vector<float> embed(Engine& engine, const std::vector<std::vector<int32_t>>& inputs) {
  SequenceBatch batch;
  for (const auto& ids : inputs) batch.add(ids);
  std::vector<float> out(inputs.size() * static_cast<size_t>(engine.info().hidden_size), NAN);
  const Status st = engine.embed(batch, out);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return out;
}

// Hidden 64, MLP 96, 4 heads and 2 key/value heads of 16: rows of the width the BLAS kernels take their fast paths
// on (not tails alone), still small enough for every backend, and heads that split over two ranks.
inline TinyQwen3Spec spec_with_blas_sized_rows() {
  TinyQwen3Spec spec;
  spec.hidden = 64;
  spec.intermediate = 96;
  spec.heads = 4;
  spec.kv_heads = 2;
  spec.head_dim = 16;
  spec.vocab = 300;
  return spec;
}

}  // namespace embedserve::testing
