// busy_poll tests: the auto duration on a GPU outlasts one query's engine call, within its floor and ceiling.
#include "scheduler/busy_poll.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>

namespace embedserve {
namespace {

using std::chrono::microseconds;

TEST(BusyPoll, OutlastsOneQueryByHalfAgainWithinThreeAndFiftyMilliseconds) {
  EXPECT_EQ(busy_poll::outlasting(0.0043), microseconds(6450));  // the 8B's query on an H200
  EXPECT_EQ(busy_poll::outlasting(0.0028), microseconds(4200));  // the 4B's
  EXPECT_EQ(busy_poll::outlasting(0.00098), microseconds(3000));  // the 0.6B's: the floor
  EXPECT_EQ(busy_poll::outlasting(0), microseconds(3000));        // not timed (no graphs)
  EXPECT_EQ(busy_poll::outlasting(0.2), microseconds(50000));     // the ceiling
  EXPECT_EQ(busy_poll::outlasting(-1), microseconds(3000));
  EXPECT_EQ(busy_poll::outlasting(std::numeric_limits<double>::quiet_NaN()), microseconds(3000));
  EXPECT_EQ(busy_poll::outlasting(std::numeric_limits<double>::infinity()), microseconds(3000));
}

}  // namespace
}  // namespace embedserve
