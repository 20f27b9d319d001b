// Vocabulary shared by every layer: element types and pooling modes.
#pragma once

#include <cstddef>

namespace embedserve {

enum class DType { kF32, kF16, kBF16 };

inline size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : 2; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
  }
  return "unknown";
}

// How one vector is drawn from a sequence's hidden states (sentence-transformers' 1_Pooling/config.json).
enum class Pooling { kLastToken, kMean, kCls };

inline const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kLastToken: return "lasttoken";
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
  }
  return "unknown";
}

}  // namespace embedserve
