// base64 tests: RFC 4648 vectors, float32 little-endian round trip, malformed input refused.
#include "server/base64.h"

#include <gtest/gtest.h>

#include <cstring>

namespace embedserve {
namespace {

std::string encode(std::string_view s) {
  std::string out;
  base64_encode({reinterpret_cast<const unsigned char*>(s.data()), s.size()}, out);
  return out;
}

TEST(Base64, Rfc4648TestVectors) {
  EXPECT_EQ(encode(""), "");
  EXPECT_EQ(encode("f"), "Zg==");
  EXPECT_EQ(encode("fo"), "Zm8=");
  EXPECT_EQ(encode("foo"), "Zm9v");
  EXPECT_EQ(encode("foob"), "Zm9vYg==");
  EXPECT_EQ(encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(encode("\xff\xfe\xfd"), "//79");
}

TEST(Base64, FloatsAreLittleEndianFloat32) {
  const float values[] = {1.0f, -0.5f, 3.14159f};
  std::string out;
  base64_encode_floats(values, out);
  EXPECT_EQ(out.substr(0, 8), "AACAPwAA");  // 1.0f = 00 00 80 3f
  auto bytes = base64_decode(out);
  ASSERT_TRUE(bytes);
  ASSERT_EQ(bytes->size(), sizeof values);
  EXPECT_EQ(std::memcmp(bytes->data(), values, sizeof values), 0);
}

TEST(Base64, DecodeRoundTripsEveryLength) {
  std::string data;
  for (int n = 0; n < 40; ++n) {
    auto back = base64_decode(encode(data));
    ASSERT_TRUE(back);
    EXPECT_EQ(std::string(back->begin(), back->end()), data);
    data += static_cast<char>(n * 37);
  }
}

TEST(Base64, DecodeRefusesMalformedText) {
  EXPECT_FALSE(base64_decode("Zg="));
  EXPECT_FALSE(base64_decode("Z==="));
  EXPECT_FALSE(base64_decode("Zg=a"));
  EXPECT_FALSE(base64_decode("Zm9v!A=="));
  EXPECT_FALSE(base64_decode("Zg==Zm9v"));
}

}  // namespace
}  // namespace embedserve
