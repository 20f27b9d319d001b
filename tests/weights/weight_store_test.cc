// WeightStore and the safetensors header parser: single and sharded checkpoints, prefixes, dtypes, and
// every corrupt-file error, plus a mutation sweep over headers that must never crash.
#include "weights/weight_store.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <cstring>
#include <future>
#include <random>

#include <nlohmann/json.hpp>

#include "test_files.h"
#include "weights/safetensors.h"

namespace embedserve {
namespace {

using nlohmann::json;
using testing::FakeTensor;
using testing::safetensors_bytes;
using testing::safetensors_raw;
using testing::TempDir;
using testing::write_file;

void expect_status(const Status& s, ErrorCode code, std::initializer_list<std::string> needles) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  for (const auto& n : needles) EXPECT_NE(s.message().find(n), std::string::npos) << "missing '" << n << "' in " << s.to_string();
}

TEST(WeightStoreTest, SingleFileWithModelPrefix) {
  TempDir dir;
  write_file(dir / "model.safetensors",
             safetensors_bytes({{"model.embed_tokens.weight", "BF16", {10, 4}},
                                {"model.norm.weight", "F32", {4}},
                                {"model.layers.0.mlp.up_proj.weight", "F16", {6, 4}},
                                {"lm_head.weight", "I8", {10, 4}, 1}}));
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_EQ((*store)->names(), (std::vector<std::string>{"model.embed_tokens.weight",
                                                         "model.layers.0.mlp.up_proj.weight", "model.norm.weight"}));
  EXPECT_EQ((*store)->total_bytes(), 10u * 4 * 2 + 4 * 4 + 6 * 4 * 2);

  // Asked for without the prefix (as a Qwen3Model checkpoint would name it) and with it.
  auto norm = (*store)->get("norm.weight");
  ASSERT_TRUE(norm.ok()) << norm.status().to_string();
  EXPECT_EQ(norm->name, "model.norm.weight");
  EXPECT_EQ(norm->file, "model.safetensors");
  EXPECT_EQ(norm->dtype, DType::kF32);
  EXPECT_EQ(norm->shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(norm->nbytes, 16u);
  EXPECT_EQ(norm->numel(), 4);
  // The second tensor's bytes start at (0 + 1) & 0xff = 1 by the writer's pattern.
  const auto* bytes = static_cast<const uint8_t*>(norm->data);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(bytes[i], (i + 1) & 0xff);

  auto emb = (*store)->get("model.embed_tokens.weight", std::vector<int64_t>{10, 4});
  ASSERT_TRUE(emb.ok()) << emb.status().to_string();
  EXPECT_EQ(emb->dtype, DType::kBF16);
  EXPECT_EQ(static_cast<const uint8_t*>(emb->data)[5], 5);
  auto up = (*store)->get("layers.0.mlp.up_proj.weight");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(up->dtype, DType::kF16);

  // lm_head is ignored entirely, even with a dtype we would not read.
  expect_status((*store)->get("lm_head.weight").status(), ErrorCode::kNotFound, {"lm_head.weight"});
  expect_status((*store)->get("layers.9.mlp.up_proj.weight").status(), ErrorCode::kNotFound,
                {"layers.9.mlp.up_proj.weight", "model.layers.9.mlp.up_proj.weight"});
}

TEST(WeightStoreTest, NamesWithoutPrefixFoundWithPrefix) {
  TempDir dir;
  write_file(dir / "model.safetensors", safetensors_bytes({{"layers.0.input_layernorm.weight", "F32", {8}}}));
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto t = (*store)->get("model.layers.0.input_layernorm.weight");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->name, "layers.0.input_layernorm.weight");
}

// NaN and Inf weights are refused where the engine copies them (ops/weight_upload.h), which reads every byte
// anyway: Qwen3ModelTest.ANonFiniteWeightIsRefusedAtLoadNamingTheTensor, tests/e2e/test_model_files.py.

TEST(WeightStoreTest, AFifoIsRefusedWithoutWaitingForAWriter) {
  TempDir dir;
  const auto fifo = dir / "model.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto opened = std::async(std::launch::async, [&] { return WeightStore::open(dir.path()).status(); });
  if (opened.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Blocked in open(2) waiting for a writer: be that writer so the thread (and the test) can finish.
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    FAIL() << "opening a FIFO as weights blocked";
  }
  expect_status(opened.get(), ErrorCode::kInvalidArgument, {fifo.string(), "FIFO", "not a regular file"});
}

TEST(WeightStoreTest, ShapeMismatchMessage) {
  TempDir dir;
  write_file(dir / "model-00001-of-00002.safetensors", safetensors_bytes({{"embed_tokens.weight", "F32", {16, 32}}}));
  write_file(dir / "model-00002-of-00002.safetensors",
             safetensors_bytes({{"layers.3.mlp.up_proj.weight", "BF16", {80, 32}}}));
  write_file(dir / "model.safetensors.index.json",
             json{{"metadata", {{"total_size", 0}}},
                  {"weight_map",
                   {{"embed_tokens.weight", "model-00001-of-00002.safetensors"},
                    {"layers.3.mlp.up_proj.weight", "model-00002-of-00002.safetensors"}}}}
                 .dump());
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_EQ((*store)->names().size(), 2u);
  auto t = (*store)->get("layers.3.mlp.up_proj.weight", std::vector<int64_t>{96, 32});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "tensor layers.3.mlp.up_proj.weight in model-00002-of-00002.safetensors has shape [80, 32], expected [96, 32]");
  auto rank = (*store)->get("embed_tokens.weight", std::vector<int64_t>{16, 32, 1});
  ASSERT_FALSE(rank.ok());
  EXPECT_NE(rank.status().message().find("[16, 32], expected [16, 32, 1]"), std::string::npos);
  auto ok = (*store)->get("model.embed_tokens.weight", std::vector<int64_t>{16, 32});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->file, "model-00001-of-00002.safetensors");
}

class ShardedErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(dir_ / "a.safetensors", safetensors_bytes({{"x", "F32", {2}}}));
    write_file(dir_ / "b.safetensors", safetensors_bytes({{"y", "F32", {3}}}));
  }
  void index(const json& weight_map) {
    write_file(dir_ / "model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
  }
  Status open() {
    auto s = WeightStore::open(dir_.path());
    return s.ok() ? Status() : s.status();
  }
  TempDir dir_;
};

TEST_F(ShardedErrorsTest, MissingShardNamed) {
  index({{"x", "a.safetensors"}, {"z", "model-00003-of-00003.safetensors"}});
  expect_status(open(), ErrorCode::kNotFound, {"model-00003-of-00003.safetensors", "model.safetensors.index.json"});
}

TEST_F(ShardedErrorsTest, TensorNotInItsShard) {
  index({{"x", "a.safetensors"}, {"y", "b.safetensors"}, {"w", "b.safetensors"}});
  expect_status(open(), ErrorCode::kDataLoss, {"tensor w", "b.safetensors"});
}

TEST_F(ShardedErrorsTest, TensorInTheWrongShard) {
  index({{"x", "b.safetensors"}, {"y", "a.safetensors"}});
  expect_status(open(), ErrorCode::kDataLoss, {"lists tensor x in b.safetensors, but it is in a.safetensors"});
}

TEST_F(ShardedErrorsTest, DuplicateTensorAcrossShards) {
  write_file(dir_ / "b.safetensors", safetensors_bytes({{"x", "F32", {2}}}));
  index({{"x", "a.safetensors"}, {"y", "b.safetensors"}});
  expect_status(open(), ErrorCode::kDataLoss, {"tensor x", "a.safetensors", "b.safetensors"});
}

TEST_F(ShardedErrorsTest, ShardPathEscapingTheDirectory) {
  index({{"x", "../a.safetensors"}});
  expect_status(open(), ErrorCode::kDataLoss, {"tensor x", "../a.safetensors"});
}

TEST_F(ShardedErrorsTest, IndexWithoutWeightMap) {
  write_file(dir_ / "model.safetensors.index.json", "{\"metadata\": {}}");
  expect_status(open(), ErrorCode::kDataLoss, {"weight_map"});
  write_file(dir_ / "model.safetensors.index.json", "{\"weight_map\": {\"x\": ");
  expect_status(open(), ErrorCode::kDataLoss, {"model.safetensors.index.json", "not valid JSON"});
}

TEST(WeightStoreTest, NoCheckpoint) {
  TempDir dir;
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kNotFound, {"model.safetensors"});
  write_file(dir / "pytorch_model.bin", "x");
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kNotFound, {"pytorch_model.bin"});
}

TEST(WeightStoreTest, UnsupportedDtypeNamesTensorAndDtype) {
  TempDir dir;
  write_file(dir / "model.safetensors",
             safetensors_bytes({{"norm.weight", "F32", {4}}, {"layers.0.ids", "I64", {3}, 8}}));
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kUnimplemented,
                {"model.safetensors", "layers.0.ids", "I64"});
  write_file(dir / "model.safetensors", safetensors_raw(R"({"t":{"dtype":"Q4_K","shape":[1],"data_offsets":[0,1]}})", "x"));
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kUnimplemented, {"tensor t", "Q4_K"});
}

TEST(WeightStoreTest, TruncatedFileNamesFileAndTensor) {
  TempDir dir;
  std::string full = safetensors_bytes({{"embed_tokens.weight", "BF16", {8, 4}}, {"norm.weight", "F32", {4}}});
  write_file(dir / "model.safetensors", full.substr(0, full.size() - 3));
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kDataLoss,
                {"model.safetensors", "norm.weight", "truncated"});
  write_file(dir / "model.safetensors", full.substr(0, 20));  // inside the header
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kDataLoss, {"model.safetensors", "header length"});
  write_file(dir / "model.safetensors", full.substr(0, 5));
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kDataLoss, {"model.safetensors", "too short"});
  write_file(dir / "model.safetensors", "");
  expect_status(WeightStore::open(dir.path()).status(), ErrorCode::kDataLoss, {"model.safetensors"});
}

// Header-level corruption, checked on the parser directly (it is what WeightStore runs at open).
Status parse(const std::string& header, const std::string& data) {
  std::string file = safetensors_raw(header, data);
  auto r = parse_safetensors_header({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, "f.safetensors");
  return r.ok() ? Status() : r.status();
}

TEST(SafetensorsHeaderTest, ValidHeaderParses) {
  std::string file = safetensors_raw(
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})"
      "      ",  // safetensors pads headers with spaces
      std::string(12, 'x'));
  auto h = parse_safetensors_header({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, "f");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_EQ(h->tensors.size(), 2u);
  EXPECT_EQ(h->tensors[0].name, "a");  // sorted by data offset
  EXPECT_EQ(h->tensors[1].name, "b");
  EXPECT_EQ(h->tensors[1].begin, 4u);
  EXPECT_EQ(h->data_start, file.size() - 12);
}

// Resident bytes of this process (/proc/self/statm), which counts the mapped file pages it has touched.
size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(WeightStoreTest, ReleaseDropsCopiedPagesFromTheProcessAndTheyReadBackUnchanged) {
  // A loader copies every tensor; release() keeps it from holding the file's pages beside the copies (issue 15:
  // the 4B peaked at 15 GiB resident for 8 GB of weights).
  TempDir dir;
  constexpr int64_t kRows = 4096, kCols = 4096;  // 32 MiB of bf16
  write_file(dir / "model.safetensors", safetensors_bytes({{"embed_tokens.weight", "BF16", {kRows, kCols}}}));
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto t = (*store)->get("embed_tokens.weight");
  ASSERT_TRUE(t.ok());
  const auto* bytes = static_cast<const unsigned char*>(t->data);
  uint64_t sum = 0;
  for (size_t i = 0; i < t->nbytes; i += 512) sum += bytes[i];  // maps every page
  const size_t touched = resident_bytes();
  (*store)->release(t->data, t->nbytes);
  const size_t released = resident_bytes();
  EXPECT_GT(touched, released + t->nbytes - (size_t{1} << 20)) << "all but the edge pages leave the resident set";
  uint64_t again = 0;
  for (size_t i = 0; i < t->nbytes; i += 512) again += bytes[i];
  EXPECT_EQ(sum, again) << "released pages read back from the file unchanged";
  (*store)->release(nullptr, 0);  // a pointer outside every file: nothing happens
}

TEST(SafetensorsHeaderTest, EveryCorruptionIsDataLossNamingTheTensor) {
  const std::string d(16, 'x');
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})", d), ErrorCode::kDataLoss,
                {"tensor t", "need 8"});
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", d), ErrorCode::kDataLoss,
                {"tensor t", "past the data region of 16 bytes"});
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", d), ErrorCode::kDataLoss,
                {"tensor t", "end before"});
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", d), ErrorCode::kDataLoss,
                {"tensor t", "non-negative"});
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,16]}})", d),
                ErrorCode::kDataLoss, {"tensor t", "overflow"});
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d), ErrorCode::kDataLoss,
                {"tensor t", "data_offsets"});
  expect_status(parse(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", d), ErrorCode::kDataLoss,
                {"tensor t", "data_offsets"});
  expect_status(parse(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", d), ErrorCode::kDataLoss, {"tensor t", "dtype"});
  expect_status(parse(R"({"t":{"dtype":"F32","data_offsets":[0,8]}})", d), ErrorCode::kDataLoss, {"tensor t", "shape"});
  expect_status(parse(R"({"t":[1,2]})", d), ErrorCode::kDataLoss, {"tensor t"});
  expect_status(parse(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", d),
                ErrorCode::kDataLoss, {"overlaps"});
  expect_status(parse(R"([1,2,3])", d), ErrorCode::kDataLoss, {"f.safetensors", "not a JSON object"});
  expect_status(parse(R"({"t":{"dtype":"F32",)", d), ErrorCode::kDataLoss, {"f.safetensors"});
  expect_status(parse(R"({"__metadata__":5})", d), ErrorCode::kDataLoss, {"__metadata__"});
  // A length field claiming more than the file holds, and one past the 100 MB limit.
  std::string lying = safetensors_raw("{}", "");
  lying[0] = 100;
  auto r = parse_safetensors_header({reinterpret_cast<const uint8_t*>(lying.data()), lying.size()}, "f.safetensors");
  expect_status(r.status(), ErrorCode::kDataLoss, {"f.safetensors", "past the end"});
  std::string huge = safetensors_raw("{}", "");
  huge[7] = 1;
  r = parse_safetensors_header({reinterpret_cast<const uint8_t*>(huge.data()), huge.size()}, "f.safetensors");
  expect_status(r.status(), ErrorCode::kDataLoss, {"100 MB"});
}

TEST(SafetensorsHeaderTest, DeeplyNestedHeaderDoesNotCrash) {
  std::string deep = "{\"t\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  EXPECT_EQ(parse(deep, "").code(), ErrorCode::kDataLoss);
  std::string meta = "{\"__metadata__\":{\"x\":" + std::string(200000, '[') + std::string(200000, ']') + "}}";
  EXPECT_TRUE(parse(meta, "").ok());
}

// Mutation sweep: random byte flips, insertions and truncations of a valid file. Every outcome must be a
// Status (or success), and whenever parsing succeeds every tensor must lie inside the buffer — the
// property that keeps later reads in bounds.
TEST(SafetensorsHeaderTest, MutatedFilesNeverCrashOrEscapeTheBuffer) {
  const std::string valid = safetensors_bytes({{"model.embed_tokens.weight", "BF16", {7, 3}},
                                               {"model.norm.weight", "F32", {3}},
                                               {"model.layers.0.self_attn.q_proj.weight", "F16", {2, 3}}});
  std::mt19937 rng(12345);
  const char alphabet[] = "{}[],:\"0123456789-eE.FBI16832_ \\";
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string f = valid;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % f.size();
      switch (rng() % 4) {
        case 0: f[pos] = static_cast<char>(rng()); break;
        case 1: f[pos] = alphabet[rng() % (sizeof(alphabet) - 1)]; break;
        case 2: f.insert(f.begin() + static_cast<long>(pos), alphabet[rng() % (sizeof(alphabet) - 1)]); break;
        case 3: f.resize(pos); break;
      }
      if (f.empty()) break;
    }
    auto r = parse_safetensors_header({reinterpret_cast<const uint8_t*>(f.data()), f.size()}, "m.safetensors");
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    ++ok;
    for (const auto& t : r->tensors) {
      ASSERT_LE(t.begin, t.end);
      ASSERT_LE(r->data_start + t.end, f.size());
    }
  }
  // Some mutations (e.g. in the data region) leave a valid file; most must be caught.
  EXPECT_GT(ok, 100);
  EXPECT_LT(ok, 15000);
}

}  // namespace
}  // namespace embedserve

namespace embedserve {
namespace {

// An F8_E4M3 weight comes with its weight_scale, per tensor or per output channel; anything else is named.
TEST(WeightStoreFp8, AWeightScaleIsAttachedOrItsAbsenceNamed) {
  TempDir dir;
  write_file(dir / "model.safetensors",
             safetensors_bytes({{"model.layers.0.mlp.up_proj.weight", "F8_E4M3", {6, 4}, 1},
                                {"model.layers.0.mlp.up_proj.weight_scale", "F32", {6, 1}},
                                {"model.layers.0.mlp.down_proj.weight", "F8_E4M3", {4, 6}, 1},
                                {"model.layers.0.mlp.down_proj.weight_scale", "BF16", {}},
                                {"model.layers.0.mlp.gate_proj.weight", "F8_E4M3", {6, 4}, 1},
                                {"model.layers.0.mlp.gate_proj.weight_scale", "F32", {2, 1}},
                                {"model.layers.0.self_attn.o_proj.weight", "F8_E4M3", {4, 4}, 1}}));
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  auto up = (*store)->get("layers.0.mlp.up_proj.weight");
  ASSERT_TRUE(up.ok()) << up.status().to_string();
  EXPECT_EQ(up->dtype, DType::kF8E4M3);
  EXPECT_EQ(up->scale_count, 6);
  EXPECT_EQ(up->scale_dtype, DType::kF32);
  EXPECT_NE(up->scale, nullptr);
  auto down = (*store)->get("layers.0.mlp.down_proj.weight");
  ASSERT_TRUE(down.ok()) << down.status().to_string();
  EXPECT_EQ(down->scale_count, 1);
  EXPECT_EQ(down->scale_dtype, DType::kBF16);
  auto gate = (*store)->get("layers.0.mlp.gate_proj.weight");  // 2 scales for 6 rows: block-wise, not read
  ASSERT_FALSE(gate.ok());
  EXPECT_EQ(gate.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(gate.status().message().find("model.layers.0.mlp.gate_proj.weight_scale"), std::string::npos);
  EXPECT_NE(gate.status().message().find("not block-wise ones"), std::string::npos) << gate.status().to_string();
  auto o = (*store)->get("layers.0.self_attn.o_proj.weight");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("has no model.layers.0.self_attn.o_proj.weight_scale"), std::string::npos)
      << o.status().to_string();
}

}  // namespace
}  // namespace embedserve
