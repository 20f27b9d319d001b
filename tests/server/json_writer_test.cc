// JsonWriter tests: output parses with nlohmann, floats read back bit-exact, strings escape and repair UTF-8.
#include "server/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

namespace embedserve {
namespace {

TEST(JsonWriter, FloatsRoundTripExactly) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> values(4096);
  for (auto& v : values) v = dist(rng);
  values[0] = 0.0f;
  values[1] = -0.0f;
  values[2] = std::numeric_limits<float>::denorm_min();
  values[3] = std::numeric_limits<float>::max();
  values[4] = 1e-30f;
  std::string out;
  JsonWriter w(out);
  w.float_array(values);
  auto parsed = nlohmann::json::parse(out);
  ASSERT_EQ(parsed.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const float back = static_cast<float>(parsed[i].get<double>());
    EXPECT_EQ(std::memcmp(&back, &values[i], sizeof(float)), 0) << i << ": " << values[i] << " came back as " << back;
  }
}

TEST(JsonWriter, ShortestFormWithoutTrailingDigits) {
  std::string out;
  JsonWriter w(out);
  w.begin_array();
  w.number(0.1f);
  w.number(1.0f);
  w.number(-2.5f);
  w.number(std::numeric_limits<float>::quiet_NaN());
  w.end_array();
  EXPECT_EQ(out, "[0.1,1,-2.5,null]");
}

TEST(JsonWriter, NestedStructureHasCommasInTheRightPlaces) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("a");
  w.integer(-3);
  w.key("b");
  w.begin_array();
  w.begin_object();
  w.end_object();
  w.boolean(true);
  w.null();
  w.end_array();
  w.key("c");
  w.raw_value("\"x\"");
  w.end_object();
  EXPECT_EQ(out, R"({"a":-3,"b":[{},true,null],"c":"x"})");
}

TEST(JsonWriter, EscapesAndRepairsStrings) {
  std::string out;
  JsonWriter w(out);
  w.begin_array();
  w.string("quote\" backslash\\ newline\n tab\t bell\x07 caf\xC3\xA9 \xF0\x9F\x98\x80");
  w.string(std::string("bad \xFF byte, cut \xE2\x82 and surrogate \xED\xA0\x80 end"));
  w.end_array();
  auto parsed = nlohmann::json::parse(out);  // would throw on invalid UTF-8
  EXPECT_EQ(parsed[0].get<std::string>(), "quote\" backslash\\ newline\n tab\t bell\x07 caf\xC3\xA9 \xF0\x9F\x98\x80");
  const std::string repaired = parsed[1].get<std::string>();
  EXPECT_NE(repaired.find("bad \xEF\xBF\xBD byte"), std::string::npos);
  EXPECT_NE(repaired.find(" end"), std::string::npos);
  EXPECT_EQ(repaired.find('\xFF'), std::string::npos);
  EXPECT_NO_THROW(parsed.dump());
}

}  // namespace
}  // namespace embedserve
