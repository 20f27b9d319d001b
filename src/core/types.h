// Vocabulary shared by every layer: element types and pooling modes.
#pragma once

#include <cstddef>

namespace embedserve {

// kF8E4M3 (OCP FP8 e4m3fn: bias 7, max 448, no infinities) holds quantised GEMM weights and activations only,
// each matrix row with an f32 scale beside it (core/float8.h); no op computes in it.
enum class DType { kF32, kF16, kBF16, kF8E4M3 };

inline size_t dtype_size(DType t) { return t == DType::kF32 ? 4 : t == DType::kF8E4M3 ? 1 : 2; }
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kF8E4M3: return "fp8-e4m3";
  }
  return "unknown";
}

// Weight quantisation an engine applies (SGLang's and vLLM's --quantization). kFp8: GEMM weights e4m3 with one
// f32 scale per output channel, activations quantised per token on the fly; norms, attention, pooling unchanged.
enum class Quantization { kNone, kFp8 };

inline const char* quantization_name(Quantization q) { return q == Quantization::kFp8 ? "fp8" : "none"; }

// Where an engine runs. "auto" is not a device: callers hold std::optional<Device> and nullopt means
// "CUDA when it is built in and a GPU is visible, else the CPU".
enum class Device { kCpu, kCuda };

inline const char* device_name(Device d) { return d == Device::kCuda ? "cuda" : "cpu"; }

// The element type an engine computes in (activations and weights on the device). kAuto lets the backend pick:
// f32 on the CPU, bf16 on CUDA. kF32 on CUDA is the parity mode (SGEMM, TF32 off).
enum class Precision { kAuto, kF32, kBF16 };

inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kAuto: return "auto";
    case Precision::kF32: return "f32";
    case Precision::kBF16: return "bf16";
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
