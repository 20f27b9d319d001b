// LineReader and BatchChunks: lines across read blocks, over-long lines, OpenAI's line formats, and that a run
// resumed from a chunk's end offset produces exactly the rest of an uninterrupted run.
#include "jobs/batch_chunks.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "fake_endpoint.h"

namespace embedserve::jobs {
namespace {

std::filesystem::path write_file(const std::string& name, const std::string& content) {
  auto path = std::filesystem::temp_directory_path() / ("embedserve-chunks-" + name + "-" + std::to_string(::getpid()));
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string line(const std::string& id, const std::string& input) {
  return nlohmann::json{{"custom_id", id}, {"method", "POST"}, {"url", "/v1/embeddings"}, {"body", {{"input", input}}}}
             .dump() + "\n";
}

TEST(LineReader, ReadsLinesAcrossBlocksWithTheirOffsetsAndFlagsOverLongOnes) {
  const std::string long_line(3u << 20, 'x');  // past the 1 MiB read block, and past the 2 MiB limit below
  const std::string mid(1500000, 'y');         // crosses a block edge, within the limit
  const std::string content = "first\n" + long_line + "\n" + mid + "\nlast-without-newline";
  auto reader = LineReader::open(write_file("reader", content), 0, 2u << 20);
  ASSERT_TRUE(reader.ok());
  std::string text;
  int64_t offset = -1;
  bool too_long = false;
  ASSERT_TRUE(*reader->next(text, offset, too_long));
  EXPECT_EQ(text, "first");
  EXPECT_EQ(offset, 0);
  ASSERT_TRUE(*reader->next(text, offset, too_long));
  EXPECT_TRUE(too_long);
  EXPECT_TRUE(text.empty());  // none of it held
  EXPECT_EQ(offset, 6);
  ASSERT_TRUE(*reader->next(text, offset, too_long));
  EXPECT_FALSE(too_long);
  EXPECT_EQ(text, mid);
  ASSERT_TRUE(*reader->next(text, offset, too_long));
  EXPECT_EQ(text, "last-without-newline");
  EXPECT_EQ(reader->offset(), static_cast<int64_t>(content.size()));
  EXPECT_FALSE(*reader->next(text, offset, too_long));
}

TEST(BatchLines, EnvelopeErrorsNameWhatIsWrong) {
  EXPECT_EQ(parse_batch_line("[1]", "/v1/embeddings").error.code, "invalid_json");
  EXPECT_EQ(parse_batch_line(R"({"method":"POST"})", "/v1/embeddings").error.code, "missing_custom_id");
  auto bad_method = parse_batch_line(R"({"custom_id":"a","method":"GET","url":"/v1/embeddings","body":{}})",
                                     "/v1/embeddings");
  EXPECT_EQ(bad_method.error.code, "invalid_method");
  EXPECT_EQ(bad_method.error.custom_id, "a");
  EXPECT_EQ(parse_batch_line(R"({"custom_id":"a","method":"POST","url":"/v1/x","body":{}})", "/v1/embeddings")
                .error.code, "invalid_url");
  EXPECT_EQ(parse_batch_line(R"({"custom_id":"a","method":"POST","url":"/v1/embeddings"})", "/v1/embeddings")
                .error.code, "missing_body");
  auto ok = parse_batch_line(line("a", "hi"), "/v1/embeddings");
  ASSERT_TRUE(ok.request);
  EXPECT_EQ(ok.request->body, R"({"input":"hi"})");
}

TEST(BatchChunks, AnswersEveryLineInOrderToTheOutputOrErrorLines) {
  const std::string content = line("a", "one") + "\n" + "garbage\n" + line("b", "bad input") + line("c", "three");
  testing::FakeEndpoint endpoint;
  ChunkOptions options;
  options.lines_per_chunk = 2;
  auto chunks = BatchChunks::open(write_file("order", content), 0, endpoint, options);
  ASSERT_TRUE(chunks.ok());
  std::string output, errors;
  int64_t completed = 0, failed = 0, end = 0;
  while (true) {
    auto c = chunks->next();
    ASSERT_TRUE(c.ok());
    if (!*c) break;
    output += (*c)->output;
    errors += (*c)->errors;
    completed += (*c)->completed;
    failed += (*c)->failed;
    end = (*c)->end_offset;
  }
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(failed, 2);
  EXPECT_EQ(end, static_cast<int64_t>(content.size()));
  std::vector<nlohmann::json> out, err;
  for (auto* pair : {&output, &errors}) {
    size_t at = 0;
    for (size_t nl; (nl = pair->find('\n', at)) != std::string::npos; at = nl + 1)
      (pair == &output ? out : err).push_back(nlohmann::json::parse(pair->substr(at, nl - at)));
  }
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0]["custom_id"], "a");
  EXPECT_EQ(out[0]["response"]["status_code"], 200);
  EXPECT_EQ(out[0]["response"]["body"]["echo"]["input"], "one");
  EXPECT_TRUE(out[0]["error"].is_null());
  EXPECT_EQ(out[1]["custom_id"], "c");
  ASSERT_EQ(err.size(), 2u);
  EXPECT_TRUE(err[0]["custom_id"].is_null());
  EXPECT_EQ(err[0]["error"]["code"], "invalid_json");
  EXPECT_EQ(err[1]["custom_id"], "b");
  EXPECT_EQ(err[1]["response"]["status_code"], 400);
}

TEST(BatchChunks, ResumingFromAChunksEndGivesExactlyTheRestOfAFullRun) {
  std::string content;
  // std::string("r").append(…), not "r" + …: GCC 12 reports a false -Wrestrict on that operator+ (bug 105329).
  for (int i = 0; i < 100; ++i)
    content += line(std::string("r").append(std::to_string(i)), std::string("text ").append(std::to_string(i)));
  const auto path = write_file("resume", content);
  testing::FakeEndpoint endpoint;
  ChunkOptions options;
  options.lines_per_chunk = 7;
  std::vector<ChunkResult> full;
  {
    auto chunks = BatchChunks::open(path, 0, endpoint, options);
    while (auto c = *chunks->next()) full.push_back(*c);
  }
  ASSERT_EQ(full.size(), 15u);
  for (size_t k : {0u, 6u, 13u}) {
    auto chunks = BatchChunks::open(path, full[k].end_offset, endpoint, options);
    std::string rest, expected;
    while (auto c = *chunks->next()) rest += c->output;
    for (size_t j = k + 1; j < full.size(); ++j) expected += full[j].output;
    EXPECT_EQ(rest, expected) << "resumed after chunk " << k;
  }
}

}  // namespace
}  // namespace embedserve::jobs
