// JobStore against a fresh SQLite file: owners see only their own objects, paging, the cancel race, debris names.
#include "jobs/job_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "jobs/ids.h"

namespace embedserve::jobs {
namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("embedserve-jobs-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

FileRecord file(const std::string& owner, const std::string& storage) {
  FileRecord f;
  f.id = *random_id("file-");
  f.owner = owner;
  f.storage_name = storage;
  f.filename = "in.jsonl";
  f.purpose = "batch";
  f.bytes = 10;
  f.created_at = 100;
  return f;
}

BatchRecord batch(const std::string& owner, const std::string& input) {
  BatchRecord b;
  b.id = *random_id("batch_");
  b.owner = owner;
  b.endpoint = "/v1/embeddings";
  b.input_file_id = input;
  b.completion_window = "24h";
  b.status = kValidating;
  b.created_at = 100;
  b.expires_at = 100 + 86400;
  b.output_storage = *random_id("data-");
  b.error_storage = *random_id("data-");
  return b;
}

TEST(Ids, AreRandomHexUnderTheirPrefixAndCheckedByShape) {
  const std::string a = *random_id("file-"), b = *random_id("file-");
  EXPECT_NE(a, b);
  EXPECT_TRUE(well_formed_id(a, "file-"));
  EXPECT_FALSE(well_formed_id(a, "batch_"));
  EXPECT_FALSE(well_formed_id("file-../../jobs.sqlite3", "file-"));
  EXPECT_FALSE(well_formed_id(a + "0", "file-"));
  EXPECT_FALSE(well_formed_id("file-" + std::string(32, 'G'), "file-"));
}

TEST(JobStore, AnOwnerSeesOnlyItsOwnFilesAndBatches) {
  auto store = JobStore::open(fresh_dir("owners"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  const FileRecord mine = file("alice", "s1");
  ASSERT_TRUE(store->insert_file(mine).ok());
  ASSERT_TRUE(store->insert_file(file("bob", "s2")).ok());
  EXPECT_TRUE(store->get_file(mine.id, "alice")->has_value());
  EXPECT_FALSE(store->get_file(mine.id, "bob")->has_value());
  EXPECT_EQ(store->list_files("alice", "", 10, "")->size(), 1u);
  EXPECT_FALSE(*store->delete_file(mine.id, "bob"));
  const BatchRecord b = batch("alice", mine.id);
  ASSERT_TRUE(store->insert_batch(b).ok());
  EXPECT_FALSE(store->get_batch(b.id, "bob")->has_value());
  EXPECT_FALSE(store->request_cancel(b.id, "bob", 5)->has_value());
  EXPECT_TRUE(store->list_batches("bob", "", 10)->empty());
  EXPECT_TRUE(*store->delete_file(mine.id, "alice"));
}

TEST(JobStore, ListsNewestFirstAndPagesWithAfter) {
  auto store = JobStore::open(fresh_dir("paging"));
  ASSERT_TRUE(store.ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    BatchRecord b = batch("o", "file-x");
    ids.push_back(b.id);
    ASSERT_TRUE(store->insert_batch(b).ok());
  }
  auto page = *store->list_batches("o", "", 2);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id, ids[4]);
  EXPECT_EQ(page[1].id, ids[3]);
  auto next = *store->list_batches("o", page[1].id, 10);
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0].id, ids[2]);
  EXPECT_EQ(next[2].id, ids[0]);
}

// The runner writes a job's progress with the record it read before a client cancelled: the cancel must stick.
TEST(JobStore, AProgressWriteDoesNotUndoACancelThatCameInBetween) {
  auto store = JobStore::open(fresh_dir("cancel"));
  ASSERT_TRUE(store.ok());
  BatchRecord b = batch("o", "file-x");
  ASSERT_TRUE(store->insert_batch(b).ok());
  BatchRecord runner_copy = b;
  auto cancelled = store->request_cancel(b.id, "o", 42);
  ASSERT_TRUE(cancelled.ok() && cancelled->has_value());
  EXPECT_EQ((*cancelled)->status, kCancelling);
  runner_copy.status = kInProgress;
  runner_copy.completed = 7;
  ASSERT_TRUE(store->update_batch(runner_copy).ok());
  auto now = *store->get_batch(b.id, "o");
  EXPECT_EQ(now->status, kCancelling);
  EXPECT_EQ(now->cancelling_at, 42);
  EXPECT_EQ(now->completed, 7);
  // Once the runner itself ends the job, its status is written as given.
  runner_copy.status = kCancelled;
  ASSERT_TRUE(store->update_batch(runner_copy).ok());
  EXPECT_EQ((*store->get_batch(b.id, "o"))->status, kCancelled);
}

TEST(JobStore, StorageNamesCoverFilesAndTheWorkingFilesOfUnfinishedJobs) {
  auto store = JobStore::open(fresh_dir("names"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->insert_file(file("o", "input-storage")).ok());
  BatchRecord b = batch("o", "file-x");
  ASSERT_TRUE(store->insert_batch(b).ok());
  auto names = *store->storage_names();
  EXPECT_EQ(names.size(), 3u);
  EXPECT_NE(std::find(names.begin(), names.end(), b.output_storage), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "input-storage"), names.end());
}

}  // namespace
}  // namespace embedserve::jobs
