// Flag parsing and --help formatting for the subcommands.
#include "cli/flags.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace embedserve::cli {

Flags::Flags(std::string command, std::string summary, std::vector<FlagSpec> specs)
    : command_(std::move(command)), summary_(std::move(summary)), specs_(std::move(specs)) {}

const FlagSpec* Flags::find(const std::string& name) const {
  for (const auto& s : specs_) {
    if (s.name == name) return &s;
    for (const auto& alias : s.aliases)
      if (alias == name) return &s;
  }
  return nullptr;
}

std::string Flags::spelled(const std::string& name) const {
  auto it = spellings_.find(name);
  return "--" + (it != spellings_.end() ? it->second : name);
}

Status Flags::parse(int argc, char** argv) {
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") { help_ = true; continue; }
    if (arg.rfind("--", 0) != 0)
      return invalid_argument("unexpected argument '" + arg + "' (see 'embedserve " + command_ + " --help')");
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    // SGLang spells some flags with underscores in old docs; accept both.
    for (auto& c : name) if (c == '_') c = '-';
    const FlagSpec* spec = find(name);
    if (!spec) return invalid_argument("unknown flag --" + name + " (see 'embedserve " + command_ + " --help')");
    spellings_[spec->name] = name;
    auto& slot = values_[spec->name];
    if (spec->value_name.empty()) {
      if (inline_value) return invalid_argument("flag --" + name + " takes no value");
      slot.push_back("true");
      continue;
    }
    if (inline_value) { slot.push_back(*inline_value); continue; }
    if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)
      return invalid_argument("flag --" + name + " needs a value (" + spec->value_name + ")");
    if (!spec->multi) slot.clear();
    slot.push_back(argv[++i]);
    while (spec->multi && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) slot.push_back(argv[++i]);
  }
  return Status();
}

std::optional<int> Flags::parse_or_exit(int argc, char** argv) {
  if (Status st = parse(argc, argv); !st.ok()) return fail(st, 2);
  if (help_) {
    std::fputs(help_text().c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

int Flags::fail(const Status& status, int exit_code) const {
  std::fprintf(stderr, "embedserve %s: %s\n", command_.c_str(), status.message().c_str());
  return exit_code;
}

std::optional<std::string> Flags::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end() && !it->second.empty()) return it->second.back();
  const FlagSpec* spec = find(name);
  if (spec && !spec->default_value.empty()) return spec->default_value;
  return std::nullopt;
}

std::vector<std::string> Flags::get_all(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  return {};
}

std::string Flags::get_or(const std::string& name, const std::string& fallback) const {
  auto v = get(name);
  return v ? *v : fallback;
}

StatusOr<long long> Flags::get_int(const std::string& name, long long fallback, long long min, long long max) const {
  auto v = get(name);
  if (!v) return fallback;
  long long out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size())
    return invalid_argument(spelled(name) + " expects a whole number, got '" + *v + "'");
  if (out < min || out > max)
    return invalid_argument(spelled(name) + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                            ", got " + *v);
  return out;
}

StatusOr<double> Flags::get_double(const std::string& name, double fallback, double min, double max) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  double out = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0') return invalid_argument(spelled(name) + " expects a number, got '" + *v + "'");
  if (out < min || out > max)
    return invalid_argument(spelled(name) + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                            ", got " + *v);
  return out;
}

std::string Flags::help_text() const {
  std::ostringstream os;
  os << "usage: embedserve " << command_ << " [flags]\n\n" << summary_ << "\n\nflags:\n";
  for (const auto& s : specs_) {
    std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name) + (s.multi ? " ..." : "");
    os << left;
    if (left.size() < 34) os << std::string(34 - left.size(), ' ');
    else os << "\n" << std::string(34, ' ');
    os << s.help;
    if (!s.default_value.empty()) os << " (default: " << s.default_value << ")";
    if (!s.aliases.empty()) {
      os << " (also";
      for (const auto& alias : s.aliases) os << " --" << alias;
      os << ")";
    }
    os << "\n";
  }
  os << "  -h, --help                      show this help\n";
  return os.str();
}

}  // namespace embedserve::cli
