// The op API's own checks, on every backend: a wrong shape, dtype or index is an internal error naming the op and
// the operand (check.h), returned before any kernel runs — every output still holds its poison afterwards, every
// in-place operand its values. A gap found in those checks is written first as a test that fails, then fixed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "op_suite_util.h"
#include "ops/add.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/gather_rows.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include "ops/rms_norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace embedserve::testing {
namespace {

class OpChecks : public OpTest {
 protected:
  // A dtype the context does not compute in.
  DType other_dtype() const { return dtype() == DType::kF32 ? DType::kBF16 : DType::kF32; }
};

// Passes when `status` is an internal error whose message contains "op: operand" (check.h's form).
::testing::AssertionResult refused(const Status& status, const std::string& op, const std::string& operand) {
  if (status.ok()) return ::testing::AssertionFailure() << op << " accepted a wrong " << operand;
  if (status.code() != ErrorCode::kInternal)
    return ::testing::AssertionFailure() << "expected an internal error, got " << status.to_string();
  const std::string want = op + ": " + operand;
  if (status.message().find(want) == std::string::npos)
    return ::testing::AssertionFailure() << "the message does not name \"" << want << "\": " << status.to_string();
  return ::testing::AssertionSuccess() << status.to_string();
}

TEST_P(OpChecks, Add) {
  const auto x0 = random(15, 1);
  DeviceTensor x = tensor(3, 5, x0), y = tensor(3, 4, random(12, 2));
  EXPECT_TRUE(refused(ops::add(ctx(), *x, *y), "add", "y"));
  const DeviceTensor wide(ctx(), other_dtype(), 3, 5);
  const Status st = ops::add(ctx(), *x, *wide);
  EXPECT_TRUE(refused(st, "add", "y")) << "a " << dtype_name(other_dtype()) << " y";
  EXPECT_TRUE(same_bits(x.download(), x0));
}

TEST_P(OpChecks, RmsNorm) {
  const DeviceTensor x = tensor(3, 5, random(15, 3));
  DeviceTensor out = tensor(3, 5);
  EXPECT_TRUE(refused(ops::rms_norm(ctx(), *x, *tensor(1, 4, random(4, 4)), 1e-6f, *out), "rms_norm", "weight"));
  const DeviceTensor short_out = tensor(2, 5);
  EXPECT_TRUE(refused(ops::rms_norm(ctx(), *x, *tensor(1, 5, random(5, 5)), 1e-6f, *short_out), "rms_norm", "out"));
  EXPECT_TRUE(untouched(out.download()));
  EXPECT_TRUE(untouched(short_out.download()));
}

TEST_P(OpChecks, AddRmsNorm) {
  // A wrong delta is caught before the residual changes (the error names the check that caught it: add's, where
  // add_rms_norm is a composition).
  const auto r0 = random(15, 6);
  DeviceTensor residual = tensor(3, 5, r0), out = tensor(3, 5);
  const Status st = ops::add_rms_norm(ctx(), *residual, *tensor(3, 4, random(12, 7)), *tensor(1, 5, random(5, 8)),
                                      1e-6f, *out);
  EXPECT_EQ(st.code(), ErrorCode::kInternal) << st.to_string();
  EXPECT_TRUE(same_bits(residual.download(), r0));
  EXPECT_TRUE(untouched(out.download()));
}

TEST_P(OpChecks, QkNormRope) {
  const int hd = 10;
  const std::vector<int32_t> positions = {0, 1, 2};
  StagedIndices idx(ctx());
  const size_t pos = idx.add(positions);
  idx.upload();
  auto freq = ops::upload_f32(ctx(), std::vector<float>(hd / 2, 0.5f), "inv_freq");
  check(freq.status(), "uploading inv_freq");
  auto scratch = ops::Buffer::allocate(ctx(), ops::rotary_table_bytes(ctx(), 3, hd), "rotary tables");
  check(scratch.status(), "allocating the rotary tables");
  EXPECT_TRUE(refused(ops::rotary_table(ctx(), idx[pos], freq->tensor, 9, scratch->data()).status(), "rotary_table",
                      "head_dim"));
  EXPECT_TRUE(refused(ops::rotary_table(ctx(), idx[pos], freq->tensor.first_rows(1).columns(0, 3), hd,
                                        scratch->data()).status(),
                      "rotary_table", "inv_freq"));
  auto table = ops::rotary_table(ctx(), idx[pos], freq->tensor, hd, scratch->data());
  ASSERT_TRUE(succeeded(table.status()));
  const DeviceTensor w = tensor(1, hd, random(hd, 9));
  const auto x0 = random(3 * 2 * hd + 3, 10);
  DeviceTensor not_heads = tensor(3, 2 * hd + 1, x0);  // rows that are not whole heads
  EXPECT_TRUE(refused(ops::qk_norm_rope(ctx(), *not_heads, *w, 1e-6f, *table), "qk_norm_rope", "x"));
  EXPECT_TRUE(same_bits(not_heads.download(), x0));
  const auto x1 = random(4 * 2 * hd, 11);
  DeviceTensor four_rows = tensor(4, 2 * hd, x1);  // 4 rows, 3 positions
  EXPECT_TRUE(refused(ops::qk_norm_rope(ctx(), *four_rows, *w, 1e-6f, *table), "qk_norm_rope", "positions"));
  EXPECT_TRUE(same_bits(four_rows.download(), x1));
  // A norm weight of the wrong size: an internal error naming the weight, before x changes.
  const auto x2 = random(3 * 2 * hd, 12);
  DeviceTensor x = tensor(3, 2 * hd, x2);
  const Status st = ops::qk_norm_rope(ctx(), *x, *tensor(1, hd + 2, random(hd + 2, 13)), 1e-6f, *table);
  EXPECT_EQ(st.code(), ErrorCode::kInternal) << st.to_string();
  EXPECT_NE(st.message().find("weight"), std::string::npos) << st.to_string();
  EXPECT_TRUE(same_bits(x.download(), x2));
}

TEST_P(OpChecks, Swiglu) {
  DeviceTensor out = tensor(3, 4);
  EXPECT_TRUE(refused(ops::swiglu(ctx(), *tensor(3, 9, random(27, 14)), *out), "swiglu", "gate_up"));
  EXPECT_TRUE(untouched(out.download()));
}

TEST_P(OpChecks, Linear) {
  const DeviceTensor x = tensor(5, 7, random(35, 15)), w = weight_tensor(3, 7, random_weights(21, 16, 1.0f));
  DeviceTensor y = tensor(5, 3);
  StagedIndices idx(ctx());
  const size_t all = idx.add(std::vector<int32_t>{0, 5}), short_groups = idx.add(std::vector<int32_t>{0, 4});
  idx.upload();
  EXPECT_TRUE(
      refused(ops::linear(ctx(), *x, *weight_tensor(3, 6, random_weights(18, 17, 1.0f)), *y, idx[all]), "linear", "w"));
  if (weight_dtype() != dtype()) {  // a weight in the activations' dtype where the context keeps weights narrower
    EXPECT_TRUE(refused(ops::linear(ctx(), *x, *tensor(3, 7, random(21, 16)), *y, idx[all]), "linear", "w"));
  }
  const DeviceTensor wide_y = tensor(5, 4);
  EXPECT_TRUE(refused(ops::linear(ctx(), *x, *w, *wide_y, idx[all]), "linear", "y"));
  EXPECT_TRUE(refused(ops::linear(ctx(), *x, *w, *y, idx[short_groups]), "linear", "row_groups"));
  EXPECT_TRUE(untouched(y.download()));
  EXPECT_TRUE(untouched(wide_y.download()));
}

TEST_P(OpChecks, Attention) {
  const ops::AttentionShape shape{4, 2, 8, 0.35f};
  const std::vector<int32_t> offsets = {0, 2, 5}, positions = {0, 1, 0, 1, 2};
  const DeviceTensor q = tensor(5, 32, random(160, 18)), k = tensor(5, 16, random(80, 19));
  const DeviceTensor v = tensor(5, 16, random(80, 20)), short_v = tensor(4, 16, random(64, 21));
  DeviceTensor out = tensor(5, 32);
  StagedIndices idx(ctx());
  const size_t off = idx.add(offsets), pos = idx.add(positions), one_seq = idx.add(std::vector<int32_t>{0, 5});
  const size_t plan = idx.add(ops::attention_plan(ctx(), offsets));
  idx.upload();
  const ops::SequenceRows rows{idx[off], idx[pos]};
  EXPECT_TRUE(refused(ops::attention(ctx(), *tensor(5, 24, random(120, 22)), *k, *v, *out, shape, rows, idx[off],
                                     idx[plan]),
                      "attention", "q"));
  EXPECT_TRUE(refused(ops::attention(ctx(), *q, *k, *short_v, *out, shape, rows, idx[off], idx[plan]), "attention",
                      "v"));
  EXPECT_TRUE(refused(ops::attention(ctx(), *q, *k, *v, *out, shape, rows, idx[one_seq], idx[plan]), "attention",
                      "kv_offsets"));
  EXPECT_TRUE(untouched(out.download()));
  // Heads that kv heads do not divide, and (on CUDA) an odd head size, are refused as invalid arguments: the
  // model checks them at load with check_attention_shape, so a checkpoint fails then, not at its first request.
  const Status gqa = ops::attention(ctx(), *q, *k, *v, *out, {4, 3, 8, 0.35f}, rows, idx[off], idx[plan]);
  EXPECT_EQ(gqa.code(), ErrorCode::kInvalidArgument) << gqa.to_string();
  EXPECT_NE(gqa.message().find("kv heads"), std::string::npos) << gqa.to_string();
  const Status odd = ops::check_attention_shape(ctx(), {2, 1, 13, 0.3f});
  if (on_cpu()) {
    EXPECT_TRUE(succeeded(odd));
  } else {
    EXPECT_EQ(odd.code(), ErrorCode::kInvalidArgument) << odd.to_string();
    EXPECT_NE(odd.message().find("--device cpu"), std::string::npos) << odd.to_string();
  }
  EXPECT_TRUE(untouched(out.download()));
}

TEST_P(OpChecks, Pool) {
  const DeviceTensor hidden = tensor(5, 6, random(30, 23));
  StagedIndices idx(ctx());
  const size_t off = idx.add(std::vector<int32_t>{0, 2, 5}), past = idx.add(std::vector<int32_t>{0, 2, 6});
  idx.upload();
  DeviceTensor out(ctx(), DType::kF32, 2, 6), wide(ctx(), DType::kF32, 2, 7), narrow(ctx(), DType::kBF16, 2, 6);
  EXPECT_TRUE(refused(ops::pool(ctx(), *hidden, idx[off], true, *wide), "pool", "out"));
  EXPECT_TRUE(refused(ops::pool(ctx(), *hidden, idx[off], true, *narrow), "pool", "out must be f32"));
  EXPECT_TRUE(refused(ops::pool(ctx(), *hidden, idx[past], true, *out), "pool", "offsets"));
  EXPECT_TRUE(untouched(out.download()));
  EXPECT_TRUE(untouched(wide.download()));
  EXPECT_TRUE(untouched(narrow.download()));
}

TEST_P(OpChecks, GatherRows) {
  const DeviceTensor x = tensor(4, 3, random(12, 24));
  DeviceTensor out = tensor(2, 3), wide = tensor(2, 4);
  StagedIndices idx(ctx());
  const size_t outside = idx.add(std::vector<int32_t>{1, 4}), fine = idx.add(std::vector<int32_t>{3, 0});
  idx.upload();
  EXPECT_TRUE(refused(ops::gather_rows(ctx(), *x, idx[outside], *out), "gather_rows", "row 4 is outside x"));
  EXPECT_TRUE(refused(ops::gather_rows(ctx(), *x, idx[fine], *wide), "gather_rows", "out"));
  EXPECT_TRUE(refused(ops::gather_rows(ctx(), *x, idx[fine], x->first_rows(2)), "gather_rows", "out overlaps x"));
  EXPECT_TRUE(untouched(out.download()));
  EXPECT_TRUE(untouched(wide.download()));
}

TEST_P(OpChecks, Embedding) {
  const std::vector<float> values = random(20, 25);
  auto table = ops::upload_weight(ctx(), std::vector<ops::HostMatrix>{{values.data(), DType::kF32, 4, 5}}, "table");
  check(table.status(), "uploading the table");
  DeviceTensor out = tensor(3, 5), wide = tensor(2, 6);
  StagedIndices idx(ctx());
  const size_t ids = idx.add(std::vector<int32_t>{3, 0});
  idx.upload();
  EXPECT_TRUE(refused(ops::embedding(ctx(), table->tensor, idx[ids], *out), "embedding", "out"));  // 2 ids, 3 rows
  EXPECT_TRUE(refused(ops::embedding(ctx(), table->tensor, idx[ids], *wide), "embedding", "out"));
  EXPECT_TRUE(untouched(out.download()));
  EXPECT_TRUE(untouched(wide.download()));
}

// Gaps the suite found in these checks, each fixed: the tests failed before.

TEST_P(OpChecks, AWrongDtypeNamesTheOperand) {
  // check.h promises an error naming the op and the operand; expect_dtype names only the op ("add: an operand is
  // bf16 on a f32 context"), so a model with one wrongly typed weight cannot tell which.
  DeviceTensor x = tensor(3, 5, random(15, 26));
  const DeviceTensor y(ctx(), other_dtype(), 3, 5);
  EXPECT_TRUE(refused(ops::add(ctx(), *x, *y), "add", "y"));
}

TEST_P(OpChecks, AddRmsNormChecksEveryOperandBeforeAdding) {
  // On the CPU add_rms_norm is add then rms_norm, each checking its own operands: a wrong weight or out is found
  // only after add has already changed the residual, and the error names rms_norm, not the op the model called.
  // (CUDA's fused kernel checks every operand first and passes.)
  const auto r0 = random(15, 27);
  DeviceTensor residual = tensor(3, 5, r0), out = tensor(3, 5);
  const DeviceTensor delta = tensor(3, 5, random(15, 28)), weight = tensor(1, 4, random(4, 29));
  EXPECT_TRUE(refused(ops::add_rms_norm(ctx(), *residual, *delta, *weight, 1e-6f, *out), "add_rms_norm", "weight"));
  EXPECT_TRUE(same_bits(residual.download(), r0)) << "the residual changed before the error";
}

TEST_P(OpChecks, AttentionRefusesAQueryPositionPastItsSequence) {
  // Nothing checks q_rows.positions against the kv rows of its sequence: here sequence 0 has 3 kv rows and its last
  // query claims position 3, so every backend silently reads sequence 1's first key and value as its own (a larger
  // position reads past k and v). check.h promises an internal error, never an out-of-bounds kernel.
  const ops::AttentionShape shape{2, 1, 8, 0.35f};
  const std::vector<int32_t> kv_offsets = {0, 3, 8}, q_offsets = {0, 3, 8}, positions = {0, 1, 3, 0, 1, 2, 3, 4};
  const DeviceTensor q = tensor(8, 16, random(128, 30)), k = tensor(8, 8, random(64, 31));
  const DeviceTensor v = tensor(8, 8, random(64, 32));
  DeviceTensor out = tensor(8, 16);
  StagedIndices idx(ctx());
  const size_t kv = idx.add(kv_offsets), qo = idx.add(q_offsets), pos = idx.add(positions);
  const size_t plan = idx.add(ops::attention_plan(ctx(), q_offsets));
  idx.upload();
  const Status st = ops::attention(ctx(), *q, *k, *v, *out, shape, {idx[qo], idx[pos]}, idx[kv], idx[plan]);
  EXPECT_EQ(st.code(), ErrorCode::kInternal) << (st.ok() ? "accepted position 3 of a 3-row sequence" : st.to_string());
  EXPECT_TRUE(untouched(out.download()));
}

TEST_P(OpChecks, AttentionRefusesAPlanThatDoesNotCoverItsRows) {
  // On CUDA the plan (attention_plan's tiles) decides which rows run; attention checks only that it was staged and
  // has an even length. A plan made for another batch — here an empty one — returns OK with nothing written (and
  // one naming more sequences than offsets hold would read past them).
  if (on_cpu()) GTEST_SKIP() << "the CPU takes no plan";
  const ops::AttentionShape shape{2, 1, 8, 0.35f};
  const std::vector<int32_t> offsets = {0, 5}, positions = {0, 1, 2, 3, 4};
  const DeviceTensor q = tensor(5, 16, random(80, 33)), k = tensor(5, 8, random(40, 34));
  const DeviceTensor v = tensor(5, 8, random(40, 35));
  DeviceTensor out = tensor(5, 16);
  StagedIndices idx(ctx());
  const size_t off = idx.add(offsets), pos = idx.add(positions), plan = idx.add(std::vector<int32_t>{});
  idx.upload();
  const Status st = ops::attention(ctx(), *q, *k, *v, *out, shape, {idx[off], idx[pos]}, idx[off], idx[plan]);
  EXPECT_TRUE(refused(st, "attention", "plan"));
}

EMBEDSERVE_INSTANTIATE_ON_EVERY_BACKEND(OpChecks);

}  // namespace
}  // namespace embedserve::testing
