// Every `--flag` that a string literal in src/ names is a flag some embedserve command accepts, so no error
// message or help text sends a user to a flag that does not exist. Flags come from the binary's own --help.
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::string run(const std::string& args) {
  const std::string cmd = std::string("\"") + EMBEDSERVE_BIN + "\" " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

// The subcommands `embedserve --help` lists under "commands:".
std::vector<std::string> subcommands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream in(help);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line == "commands:") { in_list = true; continue; }
    if (in_list && line.empty()) break;
    if (in_list) {
      std::smatch m;
      if (std::regex_search(line, m, std::regex("^  ([a-z]+) "))) names.push_back(m[1]);
    }
  }
  return names;
}

// Every `--name` a help text shows (flags, their aliases, --help, --version).
void add_flags(const std::string& help, std::set<std::string>& flags) {
  static const std::regex flag("(^|[^A-Za-z0-9-])--([a-z][a-z0-9-]*)");
  for (std::sregex_iterator it(help.begin(), help.end(), flag), end; it != end; ++it) flags.insert((*it)[2]);
}

std::set<std::string> known_flags() {
  std::set<std::string> flags;
  const std::string top = run("--help");
  add_flags(top, flags);
  for (const auto& cmd : subcommands(top)) add_flags(run(cmd + " --help"), flags);
  return flags;
}

struct Literal {
  std::string text;
  int line = 0;
};

// The string literals of a C++/CUDA source, comments and character literals skipped (raw strings too).
std::vector<Literal> string_literals(const std::string& src) {
  std::vector<Literal> out;
  int line = 1;
  for (size_t i = 0; i < src.size(); ++i) {
    const char c = src[i];
    if (c == '\n') { ++line; continue; }
    if (c == '/' && i + 1 < src.size() && src[i + 1] == '/') {
      while (i < src.size() && src[i] != '\n') ++i;
      --i;
      continue;
    }
    if (c == '/' && i + 1 < src.size() && src[i + 1] == '*') {
      for (i += 2; i + 1 < src.size() && !(src[i] == '*' && src[i + 1] == '/'); ++i)
        if (src[i] == '\n') ++line;
      ++i;
      continue;
    }
    if (c == '\'') {
      // A digit separator (1'000) is no character literal.
      if (i > 0 && std::isdigit(static_cast<unsigned char>(src[i - 1])) && i + 1 < src.size() &&
          std::isxdigit(static_cast<unsigned char>(src[i + 1])))
        continue;
      for (++i; i < src.size() && src[i] != '\''; ++i)
        if (src[i] == '\\') ++i;
      continue;
    }
    if (c != '"') continue;
    Literal lit{"", line};
    if (i > 0 && src[i - 1] == 'R') {  // R"delim( ... )delim"
      const size_t open = src.find('(', i);
      const std::string close = ")" + src.substr(i + 1, open - i - 1) + "\"";
      const size_t end = src.find(close, open);
      lit.text = src.substr(open + 1, end - open - 1);
      for (char ch : lit.text) line += ch == '\n';
      i = end + close.size() - 1;
    } else {
      for (++i; i < src.size() && src[i] != '"'; ++i) {
        if (src[i] == '\\' && i + 1 < src.size()) lit.text += src[i++];
        lit.text += src[i];
      }
    }
    out.push_back(std::move(lit));
  }
  return out;
}

struct Mention {
  std::string flag;
  std::string where;  // file:line
};

std::vector<Mention> flags_named_in_sources() {
  static const std::regex flag("(^|[^A-Za-z0-9-])--([a-z][a-z0-9-]*)");
  std::vector<Mention> out;
  const fs::path root = EMBEDSERVE_SOURCE_DIR;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const std::string ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".cc" && ext != ".h" && ext != ".cu" && ext != ".cuh")) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string src((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const Literal& lit : string_literals(src))
      for (std::sregex_iterator it(lit.text.begin(), lit.text.end(), flag), end; it != end; ++it)
        out.push_back({(*it)[2], fs::relative(entry.path(), root.parent_path()).string() + ":" +
                                     std::to_string(lit.line)});
  }
  return out;
}

TEST(FlagNames, TheScannerSeesLiteralsNotComments) {
  const auto lits = string_literals(
      "// \"--in-comment\"\n/* \"--in-block\" */ int x = 1'000; char q = '\"';\n"
      "auto s = \"see --max-length\\\" here\"; auto r = R\"x(raw --raw-flag)x\";\n");
  ASSERT_EQ(lits.size(), 2u);
  EXPECT_EQ(lits[0].text, "see --max-length\\\" here");
  EXPECT_EQ(lits[0].line, 3);
  EXPECT_EQ(lits[1].text, "raw --raw-flag");
}

TEST(FlagNames, HelpListsEveryCommandsFlagsAndAliases) {
  const auto flags = known_flags();
  for (const char* f : {"help", "version", "model-path", "max-num-batched-tokens", "batch-tokens", "context-length",
                        "max-length", "prompt-name", "instruction", "dimensions", "tokenizer", "seq-len"})
    EXPECT_TRUE(flags.count(f)) << "--" << f << " missing from the commands' --help";
}

TEST(FlagNames, EveryFlagASourceStringNamesExists) {
  const auto known = known_flags();
  const auto mentions = flags_named_in_sources();
  ASSERT_GT(mentions.size(), 20u) << "the scan of " << EMBEDSERVE_SOURCE_DIR << " found almost nothing";
  std::map<std::string, std::vector<std::string>> unknown;  // flag → where
  for (const auto& m : mentions)
    if (!known.count(m.flag)) unknown[m.flag].push_back(m.where);
  std::string report;
  for (const auto& [flag, places] : unknown) {
    report += "--" + flag + " (no embedserve command has it) at";
    for (const auto& p : places) report += " " + p;
    report += "\n";
  }
  EXPECT_TRUE(unknown.empty()) << report;
}

}  // namespace
