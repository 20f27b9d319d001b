// Status and StatusOr: codes, messages, context and the propagation macros.
#include "core/status.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

StatusOr<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("expected a positive number, got " + std::to_string(v));
  return v;
}

StatusOr<int> doubled(int v) {
  EMBEDSERVE_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(StatusTest, CarriesCodeMessageAndContext) {
  Status s = not_found("tensor layers.3.mlp.up_proj.weight").with_context("model-00002-of-00002.safetensors");
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.to_string(), "not_found: model-00002-of-00002.safetensors: tensor layers.3.mlp.up_proj.weight");
}

TEST(StatusTest, AssignOrReturnPropagates) {
  EXPECT_EQ(doubled(4).value(), 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("-1"), std::string::npos);
}

}  // namespace
}  // namespace embedserve
