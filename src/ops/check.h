// The shape and dtype checks every op runs before it dispatches to a backend: a mistake in the model is an
// internal error naming the op and the operand, never an out-of-bounds kernel.
#pragma once

#include <initializer_list>
#include <string>

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

inline std::string shape_string(int64_t rows, int64_t cols) {
  std::string s = "[";  // appended piecewise: GCC 12 warns (-Wrestrict) falsely on "[" + std::to_string(...)
  s += std::to_string(rows);
  s += ", ";
  s += std::to_string(cols);
  s += "]";
  return s;
}

inline Status expect_shape(const char* op, const char* name, const Tensor& t, int64_t rows, int64_t cols) {
  if (t.data == nullptr && rows * cols > 0) return internal_error(std::string(op) + ": " + name + " has no memory");
  if (t.rows != rows || t.cols != cols)
    return internal_error(std::string(op) + ": " + name + " has shape " + shape_string(t.rows, t.cols) + ", expected " +
                          shape_string(rows, cols));
  if (t.stride < t.cols) return internal_error(std::string(op) + ": " + name + " has a stride below its row length");
  return Status();
}

inline Status expect_dense(const char* op, const char* name, const Tensor& t) {
  if (!t.dense()) return internal_error(std::string(op) + ": " + name + " must be dense (stride == cols)");
  return Status();
}

// An operand and its name, for the checks that take several.
struct Operand {
  const char* name;
  const Tensor* tensor;
};

// Every operand in the context's compute dtype (f32 on the CPU; f32 or bf16 on CUDA).
inline Status expect_dtype(const char* op, const DeviceContext& ctx, std::initializer_list<Operand> operands) {
  for (const Operand& o : operands)
    if (o.tensor->dtype != ctx.dtype())
      return internal_error(std::string(op) + ": " + o.name + " is " + dtype_name(o.tensor->dtype) + " on a " +
                            dtype_name(ctx.dtype()) + " context");
  return Status();
}

// Every operand dense (stride == cols).
inline Status expect_dense(const char* op, std::initializer_list<Operand> operands) {
  for (const Operand& o : operands)
    if (!o.tensor->dense()) return internal_error(std::string(op) + ": " + o.name + " must be dense (stride == cols)");
  return Status();
}

inline Status expect_index(const char* op, const char* name, const Index& index, int64_t size) {
  if (index.size() != size)
    return internal_error(std::string(op) + ": " + name + " holds " + std::to_string(index.size()) +
                          " entries, expected " + std::to_string(size));
  if (size > 0 && index.device == nullptr) return internal_error(std::string(op) + ": " + name + " was never staged");
  return Status();
}

// The answer of an op on a device this build lacks (a CUDA context can only exist in a CUDA build, so this
// is unreachable in practice; it keeps the dispatch total).
inline Status no_backend(const char* op) {
  return unimplemented(std::string(op) + ": this embedserve was built without the CUDA backend");
}

}  // namespace embedserve::ops
