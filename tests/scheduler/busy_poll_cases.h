// with_busy_polling: a test body run with idle threads polling (scheduler/busy_poll.h) for 1 ms, which the body's
// pauses outlast (the threads then sleep), and for a minute, which they never outlast; polling is off afterwards.
#pragma once

#include <gtest/gtest.h>

#include <chrono>

#include "scheduler/busy_poll.h"

namespace embedserve::testing {

template <typename Body>
void with_busy_polling(Body body) {
  struct Off {
    ~Off() { busy_poll::set(std::chrono::microseconds(0)); }
  } off;
  for (const auto poll : {std::chrono::microseconds(1000), std::chrono::microseconds(60'000'000)}) {
    SCOPED_TRACE(::testing::Message() << "busy polling " << poll.count() << " us");
    busy_poll::set(poll);
    body();
  }
}

}  // namespace embedserve::testing
