// BatchRunner with a fake endpoint: a job runs to completed with OpenAI's files, a stopped runner's job resumes
// in a new runner to the same output, and debris under files/ is removed at start.
#include "jobs/batch_runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fake_endpoint.h"
#include "jobs/ids.h"

namespace embedserve::jobs {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  fs::path dir;
  JobStore store;
  FileStorage storage;
};

Fixture open_fixture(const std::string& name, bool fresh = true) {
  const fs::path dir = fs::temp_directory_path() / ("embedserve-runner-" + name + "-" + std::to_string(::getpid()));
  if (fresh) fs::remove_all(dir);
  fs::create_directories(dir);
  return {dir, *JobStore::open(dir), *FileStorage::open(dir, 0)};
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Uploads `content` as a batch input file and creates a job on it; returns the job id.
std::string create_job(Fixture& f, const std::string& content, int64_t window_seconds = 86400) {
  FileRecord in{*random_id("file-"), "", *FileStorage::new_storage_name(), "in.jsonl", "batch",
                static_cast<int64_t>(content.size()), unix_now(), std::nullopt};
  std::ofstream(f.storage.path_of(in.storage_name), std::ios::binary) << content;
  EXPECT_TRUE(f.store.insert_file(in).ok());
  BatchRecord b;
  b.id = *random_id("batch_");
  b.endpoint = "/v1/embeddings";
  b.input_file_id = in.id;
  b.completion_window = "24h";
  b.status = kValidating;
  b.created_at = unix_now();
  b.expires_at = b.created_at + window_seconds;
  b.output_storage = *FileStorage::new_storage_name();
  b.error_storage = *FileStorage::new_storage_name();
  EXPECT_TRUE(f.store.insert_batch(b).ok());
  return b.id;
}

BatchRecord wait_for(JobStore& store, const std::string& id, const std::string& status) {
  for (int i = 0; i < 2000; ++i) {
    auto b = store.get_batch(id, "");
    if (b.ok() && *b && (*b)->status == status) return **b;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ADD_FAILURE() << "batch " << id << " never reached " << status;
  return {};
}

std::string requests(int n) {
  std::string content;
  for (int i = 0; i < n; ++i) {
    std::string id = "r";  // built in steps: GCC 12 warns falsely (-Wrestrict) about `"r" + std::to_string(i)`
    id += std::to_string(i);
    content += nlohmann::json{{"custom_id", id}, {"method", "POST"}, {"url", "/v1/embeddings"},
                              {"body", {{"input", std::to_string(i)}}}}.dump();
    content += '\n';
  }
  return content;
}

RunnerOptions small_chunks() {
  RunnerOptions o;
  o.chunks.lines_per_chunk = 16;
  o.idle_poll = std::chrono::milliseconds(20);
  return o;
}

TEST(BatchRunner, RunsAJobToCompletedWithAnOutputFile) {
  Fixture f = open_fixture("complete");
  testing::FakeEndpoint endpoint;
  const std::string id = create_job(f, requests(100));
  BatchRunner runner(f.store, f.storage, endpoint, small_chunks());
  ASSERT_TRUE(runner.start().ok());
  runner.wake();
  const BatchRecord b = wait_for(f.store, id, kCompleted);
  EXPECT_EQ(b.total, 100);
  EXPECT_EQ(b.completed, 100);
  EXPECT_TRUE(b.error_file_id.empty());
  auto out = f.store.get_file(b.output_file_id, "");
  ASSERT_TRUE(out.ok() && *out);
  const std::string text = read_all(f.storage.path_of((*out)->storage_name));
  EXPECT_EQ(static_cast<int64_t>(text.size()), (*out)->bytes);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 100);
  EXPECT_FALSE(fs::exists(f.storage.path_of(b.error_storage)));  // no failures: no error file kept
}

TEST(BatchRunner, AStoppedJobResumesInANewRunnerToTheSameOutput) {
  // Reference: one uninterrupted run.
  Fixture ref = open_fixture("resume-ref");
  testing::FakeEndpoint endpoint;
  const std::string content = requests(600);  // 38 chunks, each committed (two fdatasyncs and a transaction)
  const std::string ref_id = create_job(ref, content);
  {
    BatchRunner runner(ref.store, ref.storage, endpoint, small_chunks());
    ASSERT_TRUE(runner.start().ok());
    wait_for(ref.store, ref_id, kCompleted);
  }
  const BatchRecord ref_b = *ref.store.get_batch(ref_id, "").value();
  const std::string expected = read_all(ref.storage.path_of((*ref.store.get_file(ref_b.output_file_id, "").value()).storage_name));

  Fixture f = open_fixture("resume");
  const std::string id = create_job(f, content);
  int stops = 0;
  for (; stops < 10; ++stops) {  // start and stop a few times, each stop at a chunk boundary
    BatchRunner runner(f.store, f.storage, endpoint, small_chunks());
    ASSERT_TRUE(runner.start().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    runner.stop();
    if ((*f.store.get_batch(id, "").value()).status == kCompleted) break;
  }
  EXPECT_GT(stops, 1) << "the job finished before it was ever stopped";
  BatchRunner last(f.store, f.storage, endpoint, small_chunks());  // then let one run to the end
  ASSERT_TRUE(last.start().ok());
  const BatchRecord b = wait_for(f.store, id, kCompleted);
  const std::string got = read_all(f.storage.path_of((*f.store.get_file(b.output_file_id, "").value()).storage_name));
  // Request ids are the job id's random part and the line's offset: compare with the reference's id swapped in.
  std::string normalised = got;
  const std::string from = id.substr(id.size() - 32), to = ref_id.substr(ref_id.size() - 32);
  for (size_t at = 0; (at = normalised.find(from, at)) != std::string::npos; at += to.size())
    normalised.replace(at, from.size(), to);
  EXPECT_EQ(normalised, expected);
}

TEST(BatchRunner, RemovesFilesNoRecordRefersToAtStart) {
  Fixture f = open_fixture("debris");
  const std::string id = create_job(f, requests(3));
  std::ofstream(f.storage.path_of("data-left-by-a-crash"), std::ios::binary) << "half";
  testing::FakeEndpoint endpoint;
  BatchRunner runner(f.store, f.storage, endpoint, small_chunks());
  ASSERT_TRUE(runner.start().ok());
  EXPECT_FALSE(fs::exists(f.storage.path_of("data-left-by-a-crash")));
  wait_for(f.store, id, kCompleted);
}

TEST(BatchRunner, AJobPastItsWindowEndsExpired) {
  Fixture f = open_fixture("window");
  const std::string id = create_job(f, requests(40), -1);  // its completion window passed while it waited
  testing::FakeEndpoint endpoint;
  BatchRunner runner(f.store, f.storage, endpoint, small_chunks());
  ASSERT_TRUE(runner.start().ok());
  const BatchRecord done = wait_for(f.store, id, kExpired);
  EXPECT_TRUE(done.expired_at.has_value());
  EXPECT_EQ(done.completed, 0);
  EXPECT_TRUE(done.output_file_id.empty());
  EXPECT_EQ(endpoint.requests.load(), 0u);
}

TEST(BatchRunner, DeletesFilesPastTheirExpiry) {
  Fixture f = open_fixture("expiry");
  FileRecord old{*random_id("file-"), "", *FileStorage::new_storage_name(), "old.jsonl", "batch", 3, unix_now() - 10,
                 unix_now() - 1};
  FileRecord fresh{*random_id("file-"), "", *FileStorage::new_storage_name(), "new.jsonl", "batch", 3, unix_now(),
                   unix_now() + 3600};
  for (const auto& r : {old, fresh}) {
    std::ofstream(f.storage.path_of(r.storage_name), std::ios::binary) << "abc";
    ASSERT_TRUE(f.store.insert_file(r).ok());
  }
  testing::FakeEndpoint endpoint;
  BatchRunner runner(f.store, f.storage, endpoint, small_chunks());
  ASSERT_TRUE(runner.start().ok());
  for (int i = 0; i < 400 && fs::exists(f.storage.path_of(old.storage_name)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(f.store.get_file(old.id, "")->has_value());
  EXPECT_FALSE(fs::exists(f.storage.path_of(old.storage_name)));
  EXPECT_TRUE(f.store.get_file(fresh.id, "")->has_value());
  EXPECT_TRUE(fs::exists(f.storage.path_of(fresh.storage_name)));
}

}  // namespace
}  // namespace embedserve::jobs
