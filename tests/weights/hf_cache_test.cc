// The Hugging Face cache helpers: where the cache is, repo ids, revisions, snapshot lookup and completeness.
#include "weights/hf_cache.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "test_files.h"

namespace embedserve {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(HfCacheTest, CacheDirPrecedence) {
  HubEnvironment env;
  env.values = {{"HF_HUB_CACHE", "/a/hub"}, {"HUGGINGFACE_HUB_CACHE", "/old/hub"}, {"HF_HOME", "/h"},
                {"XDG_CACHE_HOME", "/x"}, {"HOME", "/home/u"}};
  EXPECT_EQ(*hf_cache::cache_dir(env), "/a/hub");
  env.values.erase("HF_HUB_CACHE");
  EXPECT_EQ(*hf_cache::cache_dir(env), "/old/hub");
  env.values.erase("HUGGINGFACE_HUB_CACHE");
  EXPECT_EQ(*hf_cache::cache_dir(env), "/h/hub");
  env.values["HF_HOME"] = "";  // empty means unset, as huggingface_hub reads it
  EXPECT_EQ(*hf_cache::cache_dir(env), "/x/huggingface/hub");
  env.values.erase("XDG_CACHE_HOME");
  EXPECT_EQ(*hf_cache::cache_dir(env), "/home/u/.cache/huggingface/hub");
  env.values.erase("HOME");
  EXPECT_EQ(hf_cache::cache_dir(env).status().code(), ErrorCode::kInvalidArgument);
}

TEST(HfCacheTest, RepoIdsAndRevisions) {
  EXPECT_TRUE(hf_cache::is_repo_id("Qwen/Qwen3-Embedding-0.6B"));
  EXPECT_TRUE(hf_cache::is_repo_id("a/b_c.d"));
  for (const char* bad : {"Qwen3-Embedding-0.6B", "/abs/path", "./model", "a/b/c", "a//b", "a/../b", "a/b--c",
                          "../x", "a/-b", "a/b.", "", "a/", "/b", "a b/c"})
    EXPECT_FALSE(hf_cache::is_repo_id(bad)) << bad;
  EXPECT_EQ(hf_cache::repo_folder_name("Qwen/Qwen3-Embedding-4B"), "models--Qwen--Qwen3-Embedding-4B");
  EXPECT_TRUE(hf_cache::is_valid_revision("main"));
  EXPECT_TRUE(hf_cache::is_valid_revision("refs/pr/1"));
  EXPECT_TRUE(hf_cache::is_valid_revision("v1.0"));
  for (const char* bad : {"", "../main", "a/../../b", "/main", "main/", "a b", "a//b"})
    EXPECT_FALSE(hf_cache::is_valid_revision(bad)) << bad;
  EXPECT_TRUE(hf_cache::is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(hf_cache::is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
  EXPECT_FALSE(hf_cache::is_commit_hash("main"));
}

TEST(HfCacheTest, OfflineMode) {
  HubEnvironment env;
  for (const char* on : {"1", "ON", "yes", "True"}) {
    env.values["HF_HUB_OFFLINE"] = on;
    EXPECT_TRUE(hf_cache::offline_mode(env)) << on;
  }
  for (const char* off : {"0", "false", "", "no"}) {
    env.values["HF_HUB_OFFLINE"] = off;
    EXPECT_FALSE(hf_cache::offline_mode(env)) << off;
  }
  env.values.erase("HF_HUB_OFFLINE");
  EXPECT_FALSE(hf_cache::offline_mode(env));
}

TEST(HfCacheTest, FindSnapshotAndMissingFiles) {
  TempDir cache;
  const std::string commit = "1111111111111111111111111111111111111111";
  const auto repo = cache.path() / "models--org--m";
  EXPECT_FALSE(hf_cache::find_snapshot(cache.path(), "org/m", "main").has_value());
  write_file(repo / "refs" / "main", commit);
  EXPECT_FALSE(hf_cache::find_snapshot(cache.path(), "org/m", "main").has_value());  // no snapshot folder yet
  const auto snap = repo / "snapshots" / commit;
  write_file(snap / "config.json", "{}");
  ASSERT_EQ(hf_cache::find_snapshot(cache.path(), "org/m", "main"), snap);
  ASSERT_EQ(hf_cache::find_snapshot(cache.path(), "org/m", commit), snap);
  EXPECT_FALSE(hf_cache::find_snapshot(cache.path(), "org/m", "v2").has_value());

  EXPECT_EQ(hf_cache::missing_files(snap), (std::vector<std::string>{"tokenizer.json", "model.safetensors"}));
  write_file(snap / "tokenizer.json", "{}");
  write_file(snap / "model.safetensors.index.json",
             R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  write_file(snap / "model-00001-of-00002.safetensors", "x");
  EXPECT_EQ(hf_cache::missing_files(snap), (std::vector<std::string>{"model-00002-of-00002.safetensors"}));
  // A link whose blob is gone counts as missing.
  std::filesystem::create_symlink("../../blobs/gone", snap / "model-00002-of-00002.safetensors");
  EXPECT_EQ(hf_cache::missing_files(snap), (std::vector<std::string>{"model-00002-of-00002.safetensors"}));
  write_file(repo / "blobs" / "gone", "x");
  EXPECT_TRUE(hf_cache::missing_files(snap).empty());
  write_file(snap / "modules.json", R"([{"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}])");
  EXPECT_EQ(hf_cache::missing_files(snap), (std::vector<std::string>{"1_Pooling/config.json"}));
}

}  // namespace
}  // namespace embedserve
