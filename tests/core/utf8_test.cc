// UTF-8 validation rejects every ill-formed class from RFC 3629 and round-trips every code point.
#include "core/utf8.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

TEST(Utf8Test, AcceptsWellFormed) {
  EXPECT_TRUE(validate_utf8("").ok());
  EXPECT_TRUE(validate_utf8("hello").ok());
  EXPECT_TRUE(validate_utf8("h\xC3\xA9llo \xE4\xB8\xAD \xF0\x9F\x98\x80").ok());
}

TEST(Utf8Test, RejectsIllFormed) {
  for (std::string bad : {std::string("\x80"), std::string("\xC0\xAF"), std::string("\xE0\x80\xAF"),
                          std::string("\xED\xA0\x80"), std::string("\xF4\x90\x80\x80"), std::string("\xF5"),
                          std::string("abc\xE4\xB8"), std::string("\xC3\x28"), std::string("\xFF")}) {
    Status s = validate_utf8(bad);
    EXPECT_FALSE(s.ok()) << "accepted bytes of length " << bad.size();
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  }
}

TEST(Utf8Test, RoundTripsEveryScalarValue) {
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    append_utf8(cp, s);
    ASSERT_TRUE(validate_utf8(s).ok()) << std::hex << static_cast<uint32_t>(cp);
    size_t pos = 0;
    ASSERT_EQ(decode_utf8(s, pos), cp);
    ASSERT_EQ(pos, s.size());
  }
}

}  // namespace
}  // namespace embedserve
