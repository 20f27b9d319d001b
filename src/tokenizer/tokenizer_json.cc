// read_tokenizer_json: a SAX handler that builds the DOM as json::parse would, but streams model.vocab's and
// model.merges' entries into flat lists.
#include "tokenizer/tokenizer_json.h"

#include <climits>
#include <fstream>
#include <sstream>

namespace embedserve::tokenizer {
namespace {

using json = nlohmann::json;

class Reader final : public nlohmann::json_sax<json> {
 public:
  explicit Reader(TokenizerJson& out) : out_(out) {}

  bool null() override { return scalar(json(nullptr)); }
  bool boolean(bool v) override { return scalar(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (skip_ == 0 && mode_ == Mode::kVocab) return vocab_id(v);
    return scalar(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (skip_ == 0 && mode_ == Mode::kVocab)
      return vocab_id(v > static_cast<number_unsigned_t>(INT32_MAX) ? -1 : static_cast<int64_t>(v));
    return scalar(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return scalar(json(v)); }
  bool string(string_t& v) override {
    if (skip_ == 0 && mode_ == Mode::kMerges) return merge_string(v);
    if (skip_ == 0 && mode_ == Mode::kMergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return scalar(json(std::move(v)));
  }
  bool binary(binary_t&) override { return scalar(json()); }  // JSON text has none

  bool start_object(std::size_t) override {
    if (skip_ > 0 || mode_ != Mode::kNone) return skip_subtree();  // an object as an id, a merge or half of one
    if (streams("vocab")) {
      place(json::object());  // left empty: the entries go to out_.vocab
      out_.vocab.clear();     // a member given twice: the last one counts, as in a DOM
      mode_ = Mode::kVocab;
      return true;
    }
    stack_.push_back(place(json::object()));
    return true;
  }
  bool key(string_t& k) override {
    if (skip_ == 0) (mode_ == Mode::kVocab ? token_ : key_) = std::move(k);
    return true;
  }
  bool end_object() override { return close(Mode::kVocab); }
  bool start_array(std::size_t) override {
    if (skip_ == 0 && mode_ == Mode::kMerges) {  // a merge as ["left", "right"]
      mode_ = Mode::kMergePair;
      pair_.clear();
      pair_bad_ = false;
      return true;
    }
    if (skip_ > 0 || mode_ != Mode::kNone) return skip_subtree();
    if (streams("merges")) {
      place(json::array());  // left empty: the entries go to out_.merges
      out_.merges.clear();
      merge_index_ = 0;
      mode_ = Mode::kMerges;
      return true;
    }
    stack_.push_back(place(json::array()));
    return true;
  }
  bool end_array() override {
    if (skip_ == 0 && mode_ == Mode::kMergePair) {
      if (!pair_bad_ && pair_.size() == 2)
        add_merge(std::move(pair_[0]), std::move(pair_[1]));
      else
        bad_merge("is not a pair of tokens");
      mode_ = Mode::kMerges;
      return true;
    }
    return close(Mode::kMerges);
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  enum class Mode { kNone, kVocab, kMerges, kMergePair };

  // A container inside a streamed list where none belongs: the entry it is (part of) is malformed, and its events
  // are skipped to its end.
  bool skip_subtree() {
    if (skip_ == 0) {
      if (mode_ == Mode::kVocab) bad_vocab();
      if (mode_ == Mode::kMerges) bad_merge("is not a pair of tokens");
      if (mode_ == Mode::kMergePair) pair_bad_ = true;
    }
    ++skip_;
    return true;
  }

  // The end of a container: of one being skipped, of the streamed list `streamed` (back to building the DOM), or
  // of a DOM container.
  bool close(Mode streamed) {
    if (skip_ > 0)
      --skip_;
    else if (mode_ == streamed)
      mode_ = Mode::kNone;
    else
      stack_.pop_back();
    return true;
  }

  // Whether the container starting now is model.<member>: directly in the root's "model" object, at `member`.
  bool streams(const char* member) const {
    return stack_.size() == 2 && model_ == stack_[1] && stack_[1]->is_object() && key_ == member;
  }

  // A scalar into the DOM, or a wrong-typed entry of a streamed list.
  bool scalar(json v) {
    if (skip_ > 0) return true;
    switch (mode_) {
      case Mode::kVocab:
        bad_vocab();
        break;
      case Mode::kMerges:
        bad_merge("is not a pair of tokens");
        break;
      case Mode::kMergePair:
        pair_bad_ = true;
        break;
      case Mode::kNone:
        place(std::move(v));
        break;
    }
    return true;
  }

  // Puts v where the DOM is at (the root, the open object's pending key, the end of the open array); returns it.
  json* place(json v) {
    if (stack_.empty()) {
      out_.dom = std::move(v);
      return &out_.dom;
    }
    json& top = *stack_.back();
    if (!top.is_object()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json* slot = &(top[key_] = std::move(v));
    if (stack_.size() == 1 && key_ == "model") model_ = slot;
    return slot;
  }

  bool vocab_id(int64_t id) {
    if (id < 0 || id > INT32_MAX)
      bad_vocab();
    else
      out_.vocab.emplace_back(std::move(token_), static_cast<int32_t>(id));
    return true;
  }
  bool merge_string(const std::string& s) {  // the older format, "left right"
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
      bad_merge("is not 'left right'");
    else
      add_merge(s.substr(0, space), s.substr(space + 1));
    return true;
  }
  void add_merge(std::string left, std::string right) {
    out_.merges.emplace_back(std::move(left), std::move(right));
    ++merge_index_;
  }
  void bad_vocab() {
    if (out_.entry_error.ok()) out_.entry_error = invalid_argument("model.vocab['" + token_ + "'] is not a valid id");
  }
  void bad_merge(const char* what) {
    if (out_.entry_error.ok())
      out_.entry_error = invalid_argument("model.merges[" + std::to_string(merge_index_) + "] " + what);
    ++merge_index_;
  }

  TokenizerJson& out_;
  std::vector<json*> stack_;  // the DOM's open objects and arrays, outermost first
  std::string key_;           // the open object's pending key
  json* model_ = nullptr;     // the root's "model" member, once placed
  Mode mode_ = Mode::kNone;
  size_t skip_ = 0;           // depth inside a skipped (malformed) entry
  std::string token_;         // the vocab entry being read
  std::vector<std::string> pair_;
  bool pair_bad_ = false;
  size_t merge_index_ = 0;    // the merge being read: its index in the file's array
};

}  // namespace

StatusOr<std::string> read_model_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    return invalid_argument(path.string() + " is not a regular file; model files must be regular files (or links to them)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

StatusOr<TokenizerJson> read_tokenizer_json(const std::filesystem::path& path) {
  EMBEDSERVE_ASSIGN_OR_RETURN(const std::string text, read_model_file(path));
  TokenizerJson out;
  Reader reader(out);
  if (!json::sax_parse(text, &reader)) return data_loss(path.string() + " is not valid JSON");
  return out;
}

}  // namespace embedserve::tokenizer
