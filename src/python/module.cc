// embedserve._embedserve: the nanobind module behind the `embedserve` Python package (python/embedserve/).
//
// Only type conversion lives here: LocalEngine does the work. The GIL is released around every call into the
// engine (loading, tokenising, the forward passes), so other Python threads — a Ray actor's heartbeats, a
// progress display — keep running; a Status becomes the Python exception that fits its code, with the message
// the CLI would print.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/types.h"
#include "embedserve/version.h"
#include "python/local_engine.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace embedserve::python {
namespace {

using FloatMatrix = nb::ndarray<nb::numpy, float, nb::ndim<2>, nb::c_contig>;

// Raises the exception a Python caller expects for the error's kind. Needs the GIL.
[[noreturn]] void raise_status(const Status& status) {
  PyObject* type = PyExc_RuntimeError;
  switch (status.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kOutOfRange:
      type = PyExc_ValueError;
      break;
    case ErrorCode::kNotFound:
      type = PyExc_FileNotFoundError;
      break;
    case ErrorCode::kIo:
      type = PyExc_OSError;
      break;
    case ErrorCode::kResourceExhausted:
      type = PyExc_MemoryError;
      break;
    default:
      break;
  }
  PyErr_SetString(type, status.message().c_str());
  throw nb::python_error();
}

template <typename T>
T value_or_raise(StatusOr<T> result) {
  if (!result.ok()) raise_status(result.status());
  return std::move(result).value();
}

// Runs `call` (a LocalEngine call returning a StatusOr) with the GIL released, so other Python threads run while
// it works, then, holding the GIL again, returns its value or raises its error.
template <typename Call>
auto without_gil(Call&& call) {
  auto result = [&] {
    nb::gil_scoped_release unlocked;
    return call();
  }();
  return value_or_raise(std::move(result));
}

// Hands the vector's memory to NumPy without a copy; the capsule frees it with the array.
FloatMatrix to_numpy(Matrix m) {
  auto* values = new std::vector<float>(std::move(m.values));
  nb::capsule owner(values, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  return FloatMatrix(values->data(), {m.rows, m.cols}, owner);
}

EncodeOptions encode_options(std::optional<std::string> prompt_name, std::optional<std::string> instruction,
                             std::optional<long long> dimensions, bool normalize, std::optional<long long> batch_tokens,
                             std::optional<long long> max_length, bool show_progress) {
  return EncodeOptions{std::move(prompt_name), std::move(instruction), dimensions, normalize,
                       batch_tokens,           max_length,             show_progress};
}

nb::dict info_dict(const EngineInfo& info) {
  nb::dict d;
  d["model_id"] = info.model_id;
  d["architecture"] = info.architecture;
  d["weights_dtype"] = info.dtype;
  d["device"] = device_name(info.device);
  d["dtype"] = precision_name(info.precision);
  d["backend"] = info.backend;
  d["hidden_size"] = info.hidden_size;
  d["vocab_size"] = info.vocab_size;
  d["max_position_embeddings"] = info.max_position_embeddings;
  d["pooling"] = pooling_name(info.pooling);
  d["normalize"] = info.normalize;
  d["memory_bytes"] = info.memory_bytes;
  d["workspace_tokens"] = info.workspace_tokens;
  return d;
}

}  // namespace
}  // namespace embedserve::python

NB_MODULE(_embedserve, m) {
  using namespace embedserve::python;
  m.doc() = "embedserve's engine: Qwen3-Embedding text vectors on the CPU or CUDA (see the embedserve package)";
  m.attr("__version__") = EMBEDSERVE_VERSION;

  nb::class_<LocalEngine>(m, "LocalEngine")
      .def_static(
          "open",
          [](std::string model_path, std::string device, std::string dtype,
             std::optional<size_t> max_num_batched_tokens, int threads, std::string revision) {
            const LoadOptions options{std::move(model_path), std::move(device), std::move(dtype),
                                      max_num_batched_tokens, threads,          std::move(revision)};
            return without_gil([&] { return LocalEngine::open(options); });
          },
          "model_path"_a, "device"_a, "dtype"_a, "max_num_batched_tokens"_a, "threads"_a, "revision"_a)
      .def(
          "encode_texts",
          [](const LocalEngine& self, const std::vector<std::string>& texts, std::optional<std::string> prompt_name,
             std::optional<std::string> instruction, std::optional<long long> dimensions, bool normalize,
             std::optional<long long> batch_tokens, std::optional<long long> max_length, bool show_progress) {
            const EncodeOptions options = encode_options(std::move(prompt_name), std::move(instruction), dimensions,
                                                         normalize, batch_tokens, max_length, show_progress);
            return to_numpy(without_gil([&] { return self.encode_texts(texts, options); }));
          },
          "texts"_a, "prompt_name"_a, "instruction"_a, "dimensions"_a, "normalize"_a, "batch_tokens"_a,
          "max_length"_a, "show_progress"_a)
      .def(
          "encode_ids",
          [](const LocalEngine& self, std::vector<std::vector<int32_t>> ids, std::optional<std::string> prompt_name,
             std::optional<std::string> instruction, std::optional<long long> dimensions, bool normalize,
             std::optional<long long> batch_tokens, std::optional<long long> max_length, bool show_progress) {
            const EncodeOptions options = encode_options(std::move(prompt_name), std::move(instruction), dimensions,
                                                         normalize, batch_tokens, max_length, show_progress);
            return to_numpy(without_gil([&] { return self.encode_ids(std::move(ids), options); }));
          },
          "token_ids"_a, "prompt_name"_a, "instruction"_a, "dimensions"_a, "normalize"_a, "batch_tokens"_a,
          "max_length"_a, "show_progress"_a)
      .def(
          "tokenize",
          [](const LocalEngine& self, const std::vector<std::string>& texts, std::optional<std::string> prompt_name,
             std::optional<std::string> instruction, std::optional<long long> max_length) {
            EncodeOptions options;
            options.prompt_name = std::move(prompt_name);
            options.instruction = std::move(instruction);
            options.max_length = max_length;
            return without_gil([&] { return self.tokenize(texts, options); });
          },
          "texts"_a, "prompt_name"_a, "instruction"_a, "max_length"_a)
      .def("info", [](const LocalEngine& self) { return info_dict(self.info()); })
      .def_prop_ro("max_num_batched_tokens", &LocalEngine::max_num_batched_tokens);
}
