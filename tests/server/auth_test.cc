// Bearer-token check tests.
#include "server/auth.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

TEST(Auth, AcceptsOnlyTheExactKeyWithTheBearerScheme) {
  EXPECT_TRUE(bearer_matches("Bearer sk-123", "sk-123"));
  EXPECT_TRUE(bearer_matches("bearer sk-123", "sk-123"));
  EXPECT_TRUE(bearer_matches("Bearer  sk-123 ", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer sk-124", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer sk-12", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer sk-1234", "sk-123"));
  EXPECT_FALSE(bearer_matches("Basic sk-123", "sk-123"));
  EXPECT_FALSE(bearer_matches("sk-123", "sk-123"));
  EXPECT_FALSE(bearer_matches("", "sk-123"));
  EXPECT_FALSE(bearer_matches("Bearer ", ""));
}

}  // namespace
}  // namespace embedserve
