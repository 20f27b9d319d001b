// The tokenizer pipeline: added tokens → NFC → Qwen2 split → byte-level BPE (cached per thread) →
// truncation → post-processor; and decoding back to text.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <deque>
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
  // The first (last) `needed` ids of a piece too long to merge whole for that many ids.
  void encode_piece_head(std::string_view piece, size_t needed, std::vector<int32_t>& ids) const;
  void encode_piece_tail(std::string_view piece, size_t needed, std::vector<int32_t>& ids) const;
  // Appends the ids of one segment (text between added tokens) until `stop_at` ids exist. Returns false, having
  // stopped early, once it is certain the ids would number more than `refuse_above` (SIZE_MAX: no limit).
  bool encode_segment(std::string_view segment, size_t stop_at, size_t refuse_above, std::vector<int32_t>& ids) const;
  // Content ids when only the last `keep` are wanted (truncation from the front).
  StatusOr<std::vector<int32_t>> encode_content_tail(std::string_view text, size_t keep) const;

  TokenizerSpec spec;
  AddedVocabulary added;
  Bpe bpe;
  std::unordered_map<std::string, int32_t> added_by_content;
  std::vector<std::string> decoded;  // id -> the bytes the ByteLevel decoder turns it into
  std::vector<uint8_t> id_kind;      // 0 unknown, 1 vocabulary, 2 added, 3 added and special
  size_t max_token_bytes = 1;        // the longest vocabulary entry or added token, in bytes
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

namespace {

// Ids of a long piece's beginning, for when only `needed` ids are wanted (truncation, or counting up to a
// limit). Merging a whole 20 MB word costs seconds and gigabytes; merging a window at its start costs what the
// window does. A merge decision depends on the symbols around it, so the window's last few ids may differ from
// the whole piece's (the window's end cuts symbols the whole word would merge); ids far from that end are the
// whole word's. The window therefore must hold `needed` ids plus kWindowMargin more, which are dropped:
// tests/tokenizer/test_bounded_encode.py checks the result against Hugging Face on whole texts.
constexpr size_t kWindowMargin = 64;
// Most tokens cover 2-8 bytes, so the first window assumes 8; it grows 4x until it holds enough ids, so a
// piece of long tokens costs at most ~4/3 of the window it ends with.
constexpr size_t kWindowBytesPerId = 8;
// See encode_piece_tail.
constexpr size_t kExactTailPieceBytes = 1 << 20;

size_t code_point_start_at_or_before(std::string_view s, size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}
size_t code_point_start_at_or_after(std::string_view s, size_t i) {
  while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  return i;
}

}  // namespace

void Tokenizer::Impl::encode_piece_head(std::string_view piece, size_t needed, std::vector<int32_t>& ids) const {
  thread_local std::vector<int32_t> window_ids;
  size_t window = std::max<size_t>(4096, (needed + kWindowMargin) * kWindowBytesPerId);
  for (;;) {
    const size_t end = window >= piece.size() ? piece.size() : code_point_start_at_or_before(piece, window);
    window_ids.clear();
    bpe.encode_word(piece.substr(0, end), window_ids);
    if (end == piece.size()) {  // the whole piece: exact, keep all of it
      ids.insert(ids.end(), window_ids.begin(), window_ids.end());
      break;
    }
    if (window_ids.size() >= needed + kWindowMargin) {
      ids.insert(ids.end(), window_ids.begin(), window_ids.begin() + static_cast<ptrdiff_t>(needed));
      break;
    }
    window *= 4;
  }
  if (window_ids.capacity() > (1 << 20)) std::vector<int32_t>().swap(window_ids);
}

void Tokenizer::Impl::encode_piece_tail(std::string_view piece, size_t needed, std::vector<int32_t>& ids) const {
  thread_local std::vector<int32_t> window_ids;
  // Merging is not symmetric: equal ranks merge leftmost first, so where a run of one repeated character
  // (100,000 spaces) puts its odd-sized token depends on where the run starts, and a window cut from the end
  // of the run aligns its tokens differently from the whole run. A piece up to kExactTailPieceBytes is therefore
  // merged whole (about a second and 25 MB at the limit); only a longer one is merged in windows, where its last
  // ids may differ from Hugging Face's — the price of not spending tens of seconds and gigabytes on one word.
  size_t window = piece.size() <= kExactTailPieceBytes
                      ? piece.size()
                      : std::max<size_t>(kExactTailPieceBytes, (needed + kWindowMargin) * kWindowBytesPerId);
  for (;;) {
    const size_t begin = window >= piece.size() ? 0 : code_point_start_at_or_after(piece, piece.size() - window);
    window_ids.clear();
    bpe.encode_word(piece.substr(begin), window_ids);
    if (begin == 0) {
      ids.insert(ids.end(), window_ids.begin(), window_ids.end());
      break;
    }
    if (window_ids.size() >= needed + kWindowMargin) {
      ids.insert(ids.end(), window_ids.end() - static_cast<ptrdiff_t>(needed), window_ids.end());
      break;
    }
    window *= 4;
  }
  if (window_ids.capacity() > (1 << 20)) std::vector<int32_t>().swap(window_ids);
}

bool Tokenizer::Impl::encode_segment(std::string_view segment, size_t stop_at, size_t refuse_above,
                                     std::vector<int32_t>& ids) const {
  thread_local std::string scratch;
  const size_t M = max_token_bytes;
  // Refusing: every remaining token stands for at most M normalised bytes, so B bytes still to go mean at least
  // ceil(B / M) more ids. Normalisation itself stops once that bound is past the limit.
  size_t nfc_cap = SIZE_MAX;
  if (refuse_above != SIZE_MAX) nfc_cap = ids.size() > refuse_above ? 0 : (refuse_above - ids.size()) * M;
  const std::string_view text = spec.nfc ? tokenizer::to_nfc(segment, scratch, nfc_cap) : segment;
  bool over = false;
  // Pieces are decided left to right (one code point of look-ahead, or the extent of the run the piece ends in),
  // so once `stop_at` ids exist the rest of the text cannot change them: truncation stops the work early, not
  // just the output.
  for (size_t pos = 0; pos < text.size() && ids.size() < stop_at;) {
    if (refuse_above != SIZE_MAX && ids.size() + (text.size() - pos + M - 1) / M > refuse_above) {
      over = true;
      break;
    }
    const size_t end = tokenizer::qwen2_next_piece(text, pos);
    const std::string_view piece = text.substr(pos, end - pos);
    // The most ids still of use: up to the truncation point, or one past the limit (which settles "over"); with
    // neither, the whole piece.
    const size_t wanted = std::min(stop_at, refuse_above == SIZE_MAX ? SIZE_MAX : refuse_above + 1);
    const size_t needed = wanted == SIZE_MAX ? SIZE_MAX : wanted - ids.size();
    if (needed != SIZE_MAX && piece.size() > 4096 && needed + kWindowMargin < piece.size() / kWindowBytesPerId)
      encode_piece_head(piece, needed, ids);
    else
      encode_piece(piece, ids);
    pos = end;
    if (ids.size() > refuse_above) over = true;
  }
  if (scratch.capacity() > (1 << 20)) std::string().swap(scratch);  // do not keep a long text's copy per thread
  return !over;
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
  for (const auto& [bytes, id] : s.vocab) impl->max_token_bytes = std::max(impl->max_token_bytes, bytes.size());
  for (const auto& [text, id] : s.non_byte_tokens) impl->max_token_bytes = std::max(impl->max_token_bytes, text.size());
  for (const auto& t : s.added_tokens) impl->max_token_bytes = std::max(impl->max_token_bytes, t.content.size());
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

namespace {

// NFC can make text shorter, so raw bytes bound normalised bytes only through the largest shrink factor: a code
// point is at most 3x as long in UTF-8 as its canonical decomposition (U+1FEF GREEK VARIA, 3 bytes, is U+0060,
// 1 byte) and a decomposition at most 3x as long as the code point it composes back to (U+0390: 2 bytes from 6),
// so NFC(s) has at least |s| / 9 bytes (the maxima over Unicode 14 by tools/nfc_shrink_bound.py; HF's NFC data
// is Unicode 9, a subset: new code points only add decompositions).
constexpr size_t kMaxNfcShrink = 9;

Status too_many_tokens(size_t limit) {
  return out_of_range("has more than " + std::to_string(limit) + " tokens");
}

}  // namespace

StatusOr<std::vector<int32_t>> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  EMBEDSERVE_RETURN_IF_ERROR(validate_utf8(text));
  const Impl& im = *impl_;
  const size_t added = options.add_special_tokens ? num_special_tokens_to_add() : 0;
  // HF truncates the content so that content + post-processor tokens fit; when max_length leaves no
  // room at all, the content is empty and the added tokens are still there.
  size_t limit = SIZE_MAX;
  if (options.max_length > 0) limit = options.max_length > added ? options.max_length - added : 0;
  // The most content ids a text may have before it is refused.
  size_t refuse = SIZE_MAX;
  if (options.refuse_above > 0) {
    if (options.refuse_above < added) return too_many_tokens(options.refuse_above);
    refuse = options.refuse_above - added;
    // Why a text's length bounds its token count from below: an added token is cut out of the raw text and
    // stands for its own content (≤ M = max_token_bytes bytes); every other segment is NFC-normalised (at least
    // 1/kMaxNfcShrink of its raw bytes remain), split into pieces that tile it with no gap or overlap, and each
    // piece is byte-level BPE'd into vocabulary tokens of at most M bytes each that never cross a piece. So a
    // segment of N normalised bytes gives at least ceil(N / M) ids, and the whole text at least
    // raw_bytes / (kMaxNfcShrink * M): past that the text is refused in O(1), without a byte tokenised.
    if (text.size() / kMaxNfcShrink / im.max_token_bytes > refuse) return too_many_tokens(options.refuse_above);
  }

  if (options.truncate_from_front && limit != SIZE_MAX) {
    EMBEDSERVE_ASSIGN_OR_RETURN(std::vector<int32_t> content, im.encode_content_tail(text, limit));
    std::vector<int32_t> ids;
    ids.reserve(content.size() + added);
    if (options.add_special_tokens) ids.insert(ids.end(), im.spec.prefix_ids.begin(), im.spec.prefix_ids.end());
    ids.insert(ids.end(), content.begin(), content.end());
    if (options.add_special_tokens) ids.insert(ids.end(), im.spec.suffix_ids.begin(), im.spec.suffix_ids.end());
    return ids;
  }

  std::vector<int32_t> ids;
  ids.reserve(std::min({text.size() / 3 + 8, limit == SIZE_MAX ? SIZE_MAX : limit + added,
                        refuse == SIZE_MAX ? SIZE_MAX : refuse + added + 1}));
  if (options.add_special_tokens) ids.insert(ids.end(), im.spec.prefix_ids.begin(), im.spec.prefix_ids.end());
  const size_t content_start = ids.size();
  // Content ids are counted from content_start; encode_segment compares against the absolute size.
  const size_t abs_limit = limit == SIZE_MAX ? SIZE_MAX : content_start + limit;
  const size_t abs_refuse = refuse == SIZE_MAX ? SIZE_MAX : content_start + refuse;
  for (size_t pos = 0; pos < text.size() && ids.size() < abs_limit;) {
    const auto m = im.added.find(text, pos);
    const size_t seg_end = m.begin == std::string_view::npos ? text.size() : m.begin;
    if (seg_end > pos && !im.encode_segment(text.substr(pos, seg_end - pos), abs_limit, abs_refuse, ids))
      return too_many_tokens(options.refuse_above);
    if (m.begin == std::string_view::npos) break;
    ids.push_back(m.id);
    if (ids.size() > abs_refuse) return too_many_tokens(options.refuse_above);
    pos = m.end;
  }
  if (ids.size() > abs_limit) ids.resize(abs_limit);
  if (options.add_special_tokens) ids.insert(ids.end(), im.spec.suffix_ids.begin(), im.spec.suffix_ids.end());
  return ids;
}

StatusOr<std::vector<int32_t>> Tokenizer::Impl::encode_content_tail(std::string_view text, size_t keep) const {
  // The last `keep` ids come from the last pieces, so the text is split into pieces (NFC and the split regex:
  // linear scans) while only the newest pieces are kept: each piece gives at least max(1, ceil(bytes / M)) ids,
  // so once the pieces after the oldest surely give `keep` ids, the oldest cannot contribute and is dropped.
  // Merging then runs on the kept pieces alone, from the last backwards, until `keep` ids exist. Pieces are
  // those of the whole text (the split never looks back), so the ids are the tail of the whole text's ids; a
  // piece longer than a window is merged only at its end (encode_piece_tail).
  struct Unit {
    std::string bytes;  // a piece (at most its last window for a very long one); empty for an added token
    int32_t id = -1;    // the added token's id
    size_t min_ids = 1;
    bool long_piece = false;  // longer than kExactTailPieceBytes: merged in windows from its end
  };
  const size_t M = max_token_bytes;
  const size_t max_kept_piece = std::max<size_t>(kExactTailPieceBytes, (keep + kWindowMargin) * M);
  std::deque<Unit> units;
  size_t min_ids_after_front = 0;  // lower bound of the ids of every unit but the front one
  auto push = [&](Unit u) {
    if (!units.empty()) min_ids_after_front += u.min_ids;
    units.push_back(std::move(u));
    while (units.size() > 1 && min_ids_after_front >= keep) {
      units.pop_front();
      min_ids_after_front -= units.front().min_ids;
    }
  };
  thread_local std::string scratch;
  for (size_t pos = 0; pos < text.size();) {
    const auto m = added.find(text, pos);
    const size_t seg_end = m.begin == std::string_view::npos ? text.size() : m.begin;
    if (seg_end > pos) {
      const std::string_view segment = text.substr(pos, seg_end - pos);
      const std::string_view norm = spec.nfc ? tokenizer::to_nfc(segment, scratch) : segment;
      for (size_t p = 0; p < norm.size();) {
        const size_t end = tokenizer::qwen2_next_piece(norm, p);
        std::string_view piece = norm.substr(p, end - p);
        const bool long_piece = piece.size() > kExactTailPieceBytes;
        if (piece.size() > max_kept_piece)
          piece.remove_prefix(code_point_start_at_or_after(piece, piece.size() - max_kept_piece));
        push({std::string(piece), -1, std::max<size_t>(1, (end - p + M - 1) / M), long_piece});
        p = end;
      }
    }
    if (m.begin == std::string_view::npos) break;
    push({std::string(), m.id, 1, false});
    pos = m.end;
  }
  if (scratch.capacity() > (1 << 20)) std::string().swap(scratch);
  std::vector<std::vector<int32_t>> parts;  // ids per unit, newest first
  size_t have = 0;
  for (auto it = units.rbegin(); it != units.rend() && have < keep; ++it) {
    std::vector<int32_t> part;
    if (it->id >= 0) part.push_back(it->id);
    else if (it->long_piece)
      encode_piece_tail(it->bytes, keep - have, part);
    else
      encode_piece(it->bytes, part);
    have += part.size();
    parts.push_back(std::move(part));
  }
  std::vector<int32_t> ids;
  ids.reserve(std::min(have, keep));
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) ids.insert(ids.end(), it->begin(), it->end());
  if (ids.size() > keep) ids.erase(ids.begin(), ids.end() - static_cast<ptrdiff_t>(keep));
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

size_t Tokenizer::max_token_bytes() const { return impl_->max_token_bytes; }

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->id_kind.size()); }

}  // namespace embedserve
