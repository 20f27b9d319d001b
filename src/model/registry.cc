// load_model: the table from config.json's architecture to the model class that runs it.
#include "model/registry.h"

#include <string>

#include "model/qwen3.h"

namespace embedserve {
namespace {

using Loader = StatusOr<std::unique_ptr<EmbeddingModel>> (*)(const ModelConfig&, const WeightStore&,
                                                              const ops::DeviceContext&, size_t);

StatusOr<std::unique_ptr<EmbeddingModel>> load_qwen3(const ModelConfig& config, const WeightStore& store,
                                                     const ops::DeviceContext& ctx, size_t workspace_tokens) {
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Qwen3Model> m, Qwen3Model::load(config, store, ctx, workspace_tokens));
  return std::unique_ptr<EmbeddingModel>(std::move(m));
}

StatusOr<ModelMemory> memory_qwen3(const ModelConfig& config, const WeightStore& store, const ops::DeviceContext& ctx,
                                   size_t workspace_tokens) {
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView table, store.get("embed_tokens.weight"));
  if (table.shape.size() != 2) return invalid_argument("tensor " + table.name + " in " + table.file + " is not a matrix");
  const Qwen3Model::ResidentBytes r =
      Qwen3Model::resident_bytes(config, table.shape[0], table.dtype, ctx, workspace_tokens);
  return ModelMemory{r.weights, r.workspace};
}

// A new family (a BERT-style encoder, say) is one more row, one more model file beside qwen3.cc, and the
// config parsing it needs in weights/model_config.cc.
struct Entry {
  const char* model_type;
  const char* architectures[2];
  Loader load;
  StatusOr<ModelMemory> (*memory)(const ModelConfig&, const WeightStore&, const ops::DeviceContext&, size_t);
  Status (*check_ranks)(const ModelConfig&, int);
};
constexpr Entry kModels[] = {
    {"qwen3", {"Qwen3Model", "Qwen3ForCausalLM"}, &load_qwen3, &memory_qwen3, &Qwen3Shard::check_ranks},
};

const Entry* find_entry(const ModelConfig& config, std::string& known) {
  for (const Entry& e : kModels) {
    bool match = config.model_type == e.model_type;
    for (const char* a : e.architectures) match = match || config.architecture == a;
    if (match) return &e;
    for (const char* a : e.architectures) known += (known.empty() ? "" : ", ") + std::string(a);
  }
  return nullptr;
}

Status unknown_architecture(const ModelConfig& config, const std::string& known) {
  return unimplemented("config.json names architecture '" + config.architecture + "' (model_type '" +
                       config.model_type + "'), which embedserve does not run; it runs " + known);
}

}  // namespace

StatusOr<std::unique_ptr<EmbeddingModel>> load_model(const ModelConfig& config, const WeightStore& store,
                                                     const ops::DeviceContext& ctx, size_t workspace_tokens) {
  std::string known;
  if (const Entry* e = find_entry(config, known)) return e->load(config, store, ctx, workspace_tokens);
  return unknown_architecture(config, known);
}

StatusOr<ModelMemory> model_memory(const ModelConfig& config, const WeightStore& store, const ops::DeviceContext& ctx,
                                   size_t workspace_tokens) {
  std::string known;
  if (const Entry* e = find_entry(config, known)) return e->memory(config, store, ctx, workspace_tokens);
  return unknown_architecture(config, known);
}

}  // namespace embedserve

namespace embedserve {

Status check_tensor_parallel(const ModelConfig& config, int ranks) {
  std::string known;
  if (const Entry* e = find_entry(config, known)) return e->check_ranks(config, ranks);
  return unknown_architecture(config, known);
}

}  // namespace embedserve
