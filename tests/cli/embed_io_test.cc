// Tests of the embed command's file formats (input parsing, .jsonl/.npy writing) and the progress bar.
#include "cli/embed_io.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "cli/download_progress.h"
#include "cli/progress_bar.h"

namespace embedserve::cli {
namespace {

std::vector<std::string> texts_of(const std::vector<InputText>& in) {
  std::vector<std::string> out;
  for (const auto& t : in) out.push_back(t.text);
  return out;
}

TEST(DetectInputFormat, ExtensionDecidesThenSniffing) {
  EXPECT_EQ(detect_input_format("a.jsonl", "plain"), InputFormat::kJsonLines);
  EXPECT_EQ(detect_input_format("a.NDJSON", "plain"), InputFormat::kJsonLines);
  EXPECT_EQ(detect_input_format("a.txt", "{\"text\": \"x\"}"), InputFormat::kPlainText);
  EXPECT_EQ(detect_input_format("-", "\n  \n  {\"text\": \"x\"}\n"), InputFormat::kJsonLines);
  EXPECT_EQ(detect_input_format("data", "hello\n{\"text\": 1}\n"), InputFormat::kPlainText);
  EXPECT_EQ(detect_input_format("data", ""), InputFormat::kPlainText);
}

TEST(ParseInput, JsonLinesKeepsOrderSkipsBlankLinesAndRecordsLineNumbers) {
  auto r = parse_input("{\"text\": \"one\"}\n\n  \n{\"text\": \"two\", \"id\": 7}\r\n{\"text\": \"\"}\n", InputFormat::kJsonLines,
                       "in.jsonl");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(texts_of(*r), (std::vector<std::string>{"one", "two", ""}));
  EXPECT_EQ((*r)[1].line, 4u);
  EXPECT_EQ((*r)[2].line, 5u);
}

TEST(ParseInput, JsonLinesSplitsOnNewlineOnlySoU2028StaysInsideAText) {
  // U+2028 LINE SEPARATOR is legal raw inside a JSON string; Python's splitlines() would break the line there.
  auto r = parse_input("{\"text\": \"a\xE2\x80\xA8" "b\"}\n{\"text\": \"c\\nd\"}", InputFormat::kJsonLines, "in.jsonl");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(texts_of(*r), (std::vector<std::string>{"a\xE2\x80\xA8" "b", "c\nd"}));
}

TEST(ParseInput, PlainTextEveryLineIsATextIncludingEmptyOnes) {
  auto r = parse_input("first\r\n\nthird  \n", InputFormat::kPlainText, "in.txt");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(texts_of(*r), (std::vector<std::string>{"first", "", "third  "}));
  auto no_final_newline = parse_input("a\nb", InputFormat::kPlainText, "in.txt");
  EXPECT_EQ(texts_of(*no_final_newline), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(parse_input("", InputFormat::kPlainText, "in.txt")->empty());
}

TEST(ParseInput, ALeadingByteOrderMarkIsNotPartOfTheFirstText) {
  const std::string bom = "\xEF\xBB\xBF";
  EXPECT_EQ(detect_input_format("-", bom + "{\"text\": \"x\"}\n"), InputFormat::kJsonLines);
  auto j = parse_input(bom + "{\"text\": \"x\"}\n", InputFormat::kJsonLines, "in");
  ASSERT_TRUE(j.ok()) << j.status().message();
  EXPECT_EQ(texts_of(*j), std::vector<std::string>{"x"});
  auto t = parse_input(bom + "hello\n", InputFormat::kPlainText, "in");
  EXPECT_EQ(texts_of(*t), std::vector<std::string>{"hello"});
  auto mid = parse_input("a\n" + bom + "b\n", InputFormat::kPlainText, "in");  // only at the very start
  EXPECT_EQ(texts_of(*mid), (std::vector<std::string>{"a", bom + "b"}));
}

TEST(ParseInput, ErrorsNameTheFileAndLine) {
  struct Case {
    const char* content;
    InputFormat format;
    const char* expect;
  } cases[] = {
      {"{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n", InputFormat::kJsonLines, "in:2: not valid JSON"},
      {"{\"text\": \"ok\"}\n[1, 2]\n", InputFormat::kJsonLines, "in:2: expected a JSON object"},
      {"{\"input\": \"x\"}\n", InputFormat::kJsonLines, "in:1: the object has no \"text\" field"},
      {"{\"text\": 5}\n", InputFormat::kJsonLines, "in:1: \"text\" must be a string"},
      {"{\"text\": \"\xC3\x28\"}\n", InputFormat::kJsonLines, "in:1: input is not valid UTF-8"},
      {"fine\nbad \xFF byte\n", InputFormat::kPlainText, "in:2: input is not valid UTF-8"},
      {"{\"text\": \"\\ud800\"}\n", InputFormat::kJsonLines, "in:1: not valid JSON"},  // lone surrogate escape
  };
  for (const auto& c : cases) {
    auto r = parse_input(c.content, c.format, "in");
    ASSERT_FALSE(r.ok()) << c.content;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().rfind(c.expect, 0), 0u) << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "one-line messages only";
  }
}

TEST(OutputFormat, ByExtension) {
  EXPECT_EQ(*output_format_for("x.jsonl"), OutputFormat::kJsonLines);
  EXPECT_EQ(*output_format_for("dir/x.NPY"), OutputFormat::kNpy);
  auto bad = output_format_for("x.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(".csv"), std::string::npos);
}

TEST(NpyHeader, IsVersion1AlignedTo64AndDescribesTheMatrix) {
  for (size_t rows : {0u, 3u, 123456789u}) {
    const std::string h = npy_header(rows, 1024);
    ASSERT_EQ(h.size() % 64, 0u);
    EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t len = static_cast<unsigned char>(h[8]) | (static_cast<unsigned char>(h[9]) << 8);
    EXPECT_EQ(len + 10, h.size());
    EXPECT_EQ(h.back(), '\n');
    EXPECT_NE(h.find("'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", 1024)"),
              std::string::npos);
  }
}

TEST(AppendFloat, ShortestRoundTripAndNullForNonFinite) {
  for (float v : {0.0f, -0.0f, 1.0f, 0.1f, -3.4028235e38f, 1.17549435e-38f, 1e-45f, 0.123456789f}) {
    std::string s;
    append_float(s, v);
    EXPECT_EQ(std::strtof(s.c_str(), nullptr), v) << s;
  }
  std::string s;
  append_float(s, 0.1f);
  EXPECT_EQ(s, "0.1");
  s.clear();
  append_float(s, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(s, "null");
}

class WriterTest : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("embed_io_test_" + std::to_string(::getpid()) + "_" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

TEST_F(WriterTest, JsonLinesRowsInOrderWithIndex) {
  auto w = EmbeddingWriter::open(dir_ / "o.jsonl", OutputFormat::kJsonLines, 2, 3);
  ASSERT_TRUE(w.ok());
  std::vector<float> a{0.5f, -0.25f, 1.0f}, b{0.1f, 0.0f, -2.0f};
  ASSERT_TRUE((*w)->write_row(a).ok());
  ASSERT_TRUE((*w)->write_row(b).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "o.jsonl")) << "the final name appears only once complete";
  ASSERT_TRUE((*w)->finish().ok());
  EXPECT_EQ(slurp(dir_ / "o.jsonl"),
            "{\"index\":0,\"embedding\":[0.5,-0.25,1]}\n{\"index\":1,\"embedding\":[0.1,0,-2]}\n");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "o.jsonl.partial"));
}

TEST_F(WriterTest, NpyHoldsHeaderThenLittleEndianFloat32Rows) {
  auto w = EmbeddingWriter::open(dir_ / "o.npy", OutputFormat::kNpy, 2, 2);
  ASSERT_TRUE(w.ok());
  std::vector<float> a{1.5f, -2.0f}, b{0.25f, 3.0f};
  ASSERT_TRUE((*w)->write_row(a).ok());
  ASSERT_TRUE((*w)->write_row(b).ok());
  ASSERT_TRUE((*w)->finish().ok());
  const std::string data = slurp(dir_ / "o.npy");
  const std::string header = npy_header(2, 2);
  ASSERT_EQ(data.size(), header.size() + 4 * sizeof(float));
  EXPECT_EQ(data.substr(0, header.size()), header);
  float got[4];
  std::memcpy(got, data.data() + header.size(), sizeof got);
  EXPECT_EQ(std::vector<float>(got, got + 4), (std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f}));
}

TEST_F(WriterTest, WrongShapesAndMissingRowsAreErrorsAndLeaveNoFile) {
  {
    auto w = EmbeddingWriter::open(dir_ / "o.npy", OutputFormat::kNpy, 2, 2);
    ASSERT_TRUE(w.ok());
    std::vector<float> three{1, 2, 3}, two{1, 2};
    EXPECT_FALSE((*w)->write_row(three).ok());
    ASSERT_TRUE((*w)->write_row(two).ok());
    EXPECT_FALSE((*w)->finish().ok());  // one row short
  }
  {
    auto w = EmbeddingWriter::open(dir_ / "p.npy", OutputFormat::kNpy, 1, 1);
    ASSERT_TRUE(w.ok());  // destroyed without finish(): an interrupted run
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "o.npy"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "p.npy.partial"));
  auto missing_dir = EmbeddingWriter::open(dir_ / "no" / "such" / "o.npy", OutputFormat::kNpy, 1, 1);
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.status().code(), ErrorCode::kIo);
}

TEST(ReadInputFile, MissingFileAndDirectoryAreClearErrors) {
  auto r = read_input_file("/nonexistent/texts.jsonl");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/texts.jsonl"), std::string::npos);
  EXPECT_FALSE(read_input_file("/tmp").ok());
}

TEST(ProgressBar, RendersFractionRateAndEta) {
  const std::string line = ProgressBar::render("embedding", 250, 1000, "texts", 5.0, 10, "812 tok/s");
  EXPECT_EQ(line, "embedding [==>       ]  25% 250/1000 texts  50 texts/s  elapsed 0:05  ETA 0:15  812 tok/s");
  EXPECT_EQ(ProgressBar::render("x", 10, 10, "texts", 2.0, 4),
            "x [====] 100% 10/10 texts  5 texts/s  elapsed 0:02  ETA 0:00");
  EXPECT_EQ(ProgressBar::render("dl", 3 * 1048576, 0, "B", 1.0, 4), "dl 3.0 MiB  3.0 MiB/s  elapsed 0:01");
  // Before anything is done (the first frame, drawn at once): 0 %, the clock running, no ETA yet.
  EXPECT_EQ(ProgressBar::render("x", 0, 10, "texts", 7.0, 4), "x [>   ]   0% 0/10 texts  0 texts/s  elapsed 0:07  ETA ?");
  EXPECT_EQ(ProgressBar::format_duration(3725), "1:02:05");
  EXPECT_EQ(ProgressBar::format_duration(-1), "?");
  EXPECT_NE(ProgressBar::render("x", 0, 10, "texts", 0.0, 4).find("ETA ?"), std::string::npos);
}

TEST(DownloadReporter, InALogEachFileGetsItsSizeItsProgressAndItsEnd) {
  // serve's stderr is usually a log: once it said only "downloading FILE". Now the figures a bar shows, as lines.
  ::testing::internal::CaptureStderr();
  {
    DownloadReporter r("embedserve serve: ", /*terminal=*/false, std::chrono::milliseconds(0));
    r.update("model.safetensors", 0, 4 * 1048576);
    r.update("model.safetensors", 1048576, 4 * 1048576);
    r.update("model.safetensors", 4 * 1048576, 4 * 1048576);
    r.update("config.json", 10, 0);  // size unknown, then stopped by finish()
    r.finish();
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("embedserve serve: downloading model.safetensors (4.0 MiB)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("embedserve serve: downloading model.safetensors: 1.0 MiB of 4.0 MiB (25%), "), std::string::npos) << log;
  EXPECT_NE(log.find("embedserve serve: downloaded model.safetensors: 4.0 MiB of 4.0 MiB (100%) in 0:00, "), std::string::npos) << log;
  EXPECT_NE(log.find("embedserve serve: downloading config.json (size unknown)\n"), std::string::npos) << log;
  EXPECT_NE(log.find("embedserve serve: stopped downloading config.json: 10 B in "), std::string::npos) << log;
  EXPECT_EQ(log.find('\r'), std::string::npos) << "no carriage returns in a log";
}

}  // namespace
}  // namespace embedserve::cli
