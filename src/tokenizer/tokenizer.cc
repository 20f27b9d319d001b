// The tokenizer pipeline: added tokens → NFC → Qwen2 split → byte-level BPE (cached per thread) →
// truncation → post-processor; and decoding back to text.
#include "tokenizer/tokenizer.h"

#include <atomic>
#include <unordered_map>

#include "core/utf8.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/nfc.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_spec.h"

namespace embedserve {

using tokenizer::AddedVocabulary;
using tokenizer::Bpe;
using tokenizer::TokenizerSpec;

namespace {

// Words longer than this are rare enough (and costly enough to key) that caching them is a loss.
constexpr size_t kMaxCachedWordBytes = 64;
// A thread's cache is dropped and rebuilt when it reaches this many words (bounds its memory at
// roughly 10-20 MB per thread: a hash node with a short string, plus a few ids, per word).
constexpr size_t kMaxCachedWords = 1 << 17;

std::atomic<uint64_t> g_next_instance{1};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Per-thread memo of word -> ids. Thread-local rather than shared so encode() takes no lock and threads
// never contend on a cache line; each tokenizer instance has its own id, so a thread that switches
// between two tokenizers starts over instead of mixing their entries.
struct WordCache {
  uint64_t owner = 0;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> index;
  std::vector<int32_t> pool;  // ids of all cached words, end to end
};

}  // namespace

struct Tokenizer::Impl {
  explicit Impl(TokenizerSpec s) : spec(std::move(s)), added(spec.added_tokens) {}

  void encode_piece(std::string_view piece, std::vector<int32_t>& ids) const;
  void encode_segment(std::string_view segment, size_t limit, std::vector<int32_t>& ids) const;

  TokenizerSpec spec;
  AddedVocabulary added;
  Bpe bpe;
  std::unordered_map<std::string, int32_t> added_by_content;
  std::vector<std::string> decoded;  // id -> the bytes the ByteLevel decoder turns it into
  std::vector<uint8_t> id_kind;      // 0 unknown, 1 vocabulary, 2 added, 3 added and special
  uint64_t instance = g_next_instance.fetch_add(1);
};

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.size() > kMaxCachedWordBytes || piece.size() == 1) {
    bpe.encode_word(piece, ids);
    return;
  }
  thread_local WordCache cache;
  if (cache.owner != instance) {
    cache.index.clear();
    cache.pool.clear();
    cache.owner = instance;
  }
  if (auto it = cache.index.find(piece); it != cache.index.end()) {
    ids.insert(ids.end(), cache.pool.begin() + it->second.first,
               cache.pool.begin() + it->second.first + it->second.second);
    return;
  }
  const size_t before = ids.size();
  bpe.encode_word(piece, ids);
  if (cache.index.size() >= kMaxCachedWords) {
    cache.index.clear();
    cache.pool.clear();
  }
  const auto offset = static_cast<uint32_t>(cache.pool.size());
  cache.pool.insert(cache.pool.end(), ids.begin() + before, ids.end());
  cache.index.emplace(std::string(piece), std::make_pair(offset, static_cast<uint32_t>(ids.size() - before)));
}

void Tokenizer::Impl::encode_segment(std::string_view segment, size_t limit, std::vector<int32_t>& ids) const {
  thread_local std::string scratch;
  const std::string_view text = spec.nfc ? tokenizer::to_nfc(segment, scratch) : segment;
  // Pieces are decided left to right (one code point of look-ahead), so once `limit` ids exist the
  // rest of the text cannot change them: truncation stops the work early, not just the output.
  for (size_t pos = 0; pos < text.size() && ids.size() < limit;) {
    const size_t end = tokenizer::qwen2_next_piece(text, pos);
    encode_piece(text.substr(pos, end - pos), ids);
    pos = end;
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::filesystem::path& path) {
  EMBEDSERVE_ASSIGN_OR_RETURN(TokenizerSpec spec, tokenizer::load_tokenizer_spec(path));
  auto impl = std::make_unique<Impl>(std::move(spec));
  const TokenizerSpec& s = impl->spec;
  {
    auto bpe = Bpe::build(s.vocab, s.merges, s.ignore_merges);
    if (!bpe.ok()) return bpe.status().with_context(path.string());
    impl->bpe = std::move(bpe).value();
  }

  int32_t max_id = -1;
  for (const auto& [bytes, id] : s.vocab) max_id = std::max(max_id, id);
  for (const auto& [text, id] : s.non_byte_tokens) max_id = std::max(max_id, id);
  for (const auto& t : s.added_tokens) max_id = std::max(max_id, t.id);
  // Ids index dense tables; a stray huge id in a hand-edited file must not allocate gigabytes.
  constexpr int32_t kMaxPlausibleId = 1 << 24;
  if (max_id > kMaxPlausibleId)
    return invalid_argument(path.string() + ": token id " + std::to_string(max_id) + " is implausibly large (max " +
                            std::to_string(kMaxPlausibleId) + ")");
  impl->decoded.resize(static_cast<size_t>(max_id) + 1);
  impl->id_kind.assign(static_cast<size_t>(max_id) + 1, 0);
  for (const auto& [bytes, id] : s.vocab) {
    impl->decoded[id] = bytes;
    impl->id_kind[id] = 1;
  }
  for (const auto& [text, id] : s.non_byte_tokens) {
    impl->decoded[id] = text;  // HF's ByteLevel decoder keeps such a token's own bytes
    impl->id_kind[id] = 1;
  }
  for (const auto& t : s.added_tokens) {  // added tokens win over the model's, as in HF's id_to_token
    impl->decoded[t.id] = tokenizer::byte_level_to_bytes(t.content).value_or(t.content);
    impl->id_kind[t.id] = t.special ? 3 : 2;
    impl->added_by_content.emplace(t.content, t.id);
  }
  for (int32_t id : s.prefix_ids)
    if (id < 0 || id > max_id || impl->id_kind[id] == 0)
      return invalid_argument(path.string() + ": post_processor adds id " + std::to_string(id) + ", which no token has");
  for (int32_t id : s.suffix_ids)
    if (id < 0 || id > max_id || impl->id_kind[id] == 0)
      return invalid_argument(path.string() + ": post_processor adds id " + std::to_string(id) + ", which no token has");
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

StatusOr<std::vector<int32_t>> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  EMBEDSERVE_RETURN_IF_ERROR(validate_utf8(text));
  const Impl& im = *impl_;
  const size_t added = options.add_special_tokens ? num_special_tokens_to_add() : 0;
  // HF truncates the content so that content + post-processor tokens fit; when max_length leaves no
  // room at all, the content is empty and the added tokens are still there.
  size_t limit = SIZE_MAX;
  if (options.max_length > 0) limit = options.max_length > added ? options.max_length - added : 0;

  std::vector<int32_t> ids;
  ids.reserve(std::min(text.size() / 3 + 8, limit == SIZE_MAX ? SIZE_MAX : limit + added));
  if (options.add_special_tokens) ids.insert(ids.end(), im.spec.prefix_ids.begin(), im.spec.prefix_ids.end());
  const size_t content_start = ids.size();
  // Content ids are counted from content_start; encode_segment compares against the absolute size.
  const size_t abs_limit = limit == SIZE_MAX ? SIZE_MAX : content_start + limit;
  for (size_t pos = 0; pos < text.size() && ids.size() < abs_limit;) {
    const auto m = im.added.find(text, pos);
    const size_t seg_end = m.begin == std::string_view::npos ? text.size() : m.begin;
    if (seg_end > pos) im.encode_segment(text.substr(pos, seg_end - pos), abs_limit, ids);
    if (m.begin == std::string_view::npos) break;
    ids.push_back(m.id);
    pos = m.end;
  }
  if (ids.size() > abs_limit) ids.resize(abs_limit);
  if (options.add_special_tokens) ids.insert(ids.end(), im.spec.suffix_ids.begin(), im.spec.suffix_ids.end());
  return ids;
}

size_t Tokenizer::num_special_tokens_to_add() const {
  return impl_->spec.prefix_ids.size() + impl_->spec.suffix_ids.size();
}

StatusOr<std::string> Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= im.id_kind.size() || im.id_kind[id] == 0)
      return invalid_argument("token id " + std::to_string(id) + " is not in the vocabulary (valid ids: 0.." +
                              std::to_string(im.id_kind.size() - 1) + ")");
    if (skip_special_tokens && im.id_kind[id] == 3) continue;
    bytes += im.decoded[id];
  }
  std::string text;
  text.reserve(bytes.size());
  tokenizer::append_utf8_lossy(bytes, text);
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const Impl& im = *impl_;
  if (auto it = im.added_by_content.find(std::string(token)); it != im.added_by_content.end()) return it->second;
  if (validate_utf8(token).ok()) {
    if (auto bytes = tokenizer::byte_level_to_bytes(token)) {
      if (auto it = im.spec.vocab.find(*bytes); it != im.spec.vocab.end()) return it->second;
    }
  }
  if (auto it = im.spec.non_byte_tokens.find(std::string(token)); it != im.spec.non_byte_tokens.end())
    return it->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_kind.size()); }

}  // namespace embedserve
