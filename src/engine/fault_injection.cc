// The failing Engine decorator and the parser of EMBEDSERVE_INJECT_ENGINE_FAILURE.
#include "engine/fault_injection.h"

#include <charconv>
#include <string>

namespace embedserve {
namespace {

class FailingEngine final : public Engine {
 public:
  FailingEngine(std::unique_ptr<Engine> inner, size_t replica, uint64_t fail_at)
      : Engine(inner->info()), inner_(std::move(inner)), replica_(replica), fail_at_(fail_at) {}

  void end_sequence(uint64_t sequence) override { inner_->end_sequence(sequence); }
  size_t sequences_in_progress() const override { return inner_->sequences_in_progress(); }

 protected:
  Status run(const SequenceBatch& batch, std::span<float> out) override {
    if (++calls_ < fail_at_) return inner_->embed(batch, out);
    // The words a sticky CUDA error gives (cuda_check.h), and where it came from, for whoever reads the log.
    return internal_error("injected failure of engine replica " + std::to_string(replica_) + " at its call " +
                          std::to_string(calls_) + " (" + kInjectEngineFailureEnv +
                          "): cudaErrorLaunchFailure (unspecified launch failure)");
  }

 private:
  std::unique_ptr<Engine> inner_;
  size_t replica_;
  uint64_t fail_at_;
  uint64_t calls_ = 0;  // the scheduler calls one engine from one thread
};

StatusOr<uint64_t> parse_number(std::string_view text, std::string_view spec) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return invalid_argument(std::string(kInjectEngineFailureEnv) + "='" + std::string(spec) + "': '" +
                            std::string(text) + "' is not a number; expected REPLICA:N[,REPLICA:N...], e.g. 1:3");
  return value;
}

}  // namespace

StatusOr<std::map<size_t, uint64_t>> parse_injected_failures(std::string_view spec) {
  std::map<size_t, uint64_t> failures;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    const size_t colon = item.find(':');
    if (colon == std::string_view::npos)
      return invalid_argument(std::string(kInjectEngineFailureEnv) + ": '" + std::string(item) +
                              "' has no ':'; expected REPLICA:N[,REPLICA:N...] (replica REPLICA fails its Nth call)");
    EMBEDSERVE_ASSIGN_OR_RETURN(const uint64_t replica, parse_number(item.substr(0, colon), spec));
    EMBEDSERVE_ASSIGN_OR_RETURN(const uint64_t call, parse_number(item.substr(colon + 1), spec));
    if (call == 0)
      return invalid_argument(std::string(kInjectEngineFailureEnv) + ": '" + std::string(item) +
                              "': calls count from 1");
    failures[static_cast<size_t>(replica)] = call;
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
  }
  return failures;
}

std::unique_ptr<Engine> with_injected_failure(std::unique_ptr<Engine> inner, size_t replica, uint64_t fail_at) {
  return std::make_unique<FailingEngine>(std::move(inner), replica, fail_at);
}

}  // namespace embedserve
