// SHA-256 against the FIPS 180-4 / NIST example vectors, including block-boundary and streamed inputs.
#include "weights/sha256.h"

#include <gtest/gtest.h>

#include "test_files.h"

namespace embedserve {
namespace {

std::string sha(const std::string& s) {
  Sha256 h;
  h.update(s);
  return h.hex_digest();
}

TEST(Sha256Test, NistVectors) {
  EXPECT_EQ(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256Test, MillionAsStreamedInUnevenChunks) {
  Sha256 h;
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PaddingBoundaries) {
  // Lengths around the 55/56/64-byte padding edges must agree between one-shot and byte-by-byte hashing.
  for (size_t len : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u}) {
    std::string s(len, 'x');
    Sha256 bytewise;
    for (char c : s) bytewise.update(&c, 1);
    EXPECT_EQ(bytewise.hex_digest(), sha(s)) << len;
  }
  EXPECT_EQ(sha(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

TEST(Sha256Test, File) {
  testing::TempDir dir;
  testing::write_file(dir / "f", "abc");
  auto h = sha256_file(dir / "f");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_file(dir / "missing").status().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace embedserve
