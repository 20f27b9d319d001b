// A small command-line flag parser shared by every subcommand: --name value, --name=value,
// boolean switches, repeated or multi-valued flags, and generated --help text.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace embedserve::cli {

struct FlagSpec {
  std::string name;          // without the leading "--"
  std::string value_name;    // "N", "PATH"; empty for a boolean switch
  std::string help;          // one or two plain sentences
  std::string default_value; // shown in --help; empty for none
  bool multi = false;        // takes one or more values until the next --flag
  std::vector<std::string> aliases = {};  // other names for the same flag (SGLang's spellings)
};

class Flags {
 public:
  Flags(std::string command, std::string summary, std::vector<FlagSpec> specs);

  // Parses argv (without the program and subcommand names). Unknown flags, missing values and
  // stray positional arguments are errors that name the flag.
  Status parse(int argc, char** argv);

  bool help_requested() const { return help_; }
  // Parses argv and says whether the command should stop here: --help printed (exit 0), or a flag error
  // printed as one line (exit 2). nullopt: go on.
  std::optional<int> parse_or_exit(int argc, char** argv);
  // Prints "embedserve <command>: <message>" on stderr, the one-line error every subcommand gives; returns
  // exit_code so a command can `return flags.fail(st);`.
  int fail(const Status& status, int exit_code = 1) const;
  std::string help_text() const;

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  // The last value given, or the spec's default, or nullopt.
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> get_all(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;
  bool get_bool(const std::string& name) const { return has(name); }
  // Integer/float with range checks; errors name the flag and the bad value.
  StatusOr<long long> get_int(const std::string& name, long long fallback, long long min, long long max) const;
  StatusOr<double> get_double(const std::string& name, double fallback, double min, double max) const;

 private:
  const FlagSpec* find(const std::string& name) const;

  std::string command_;
  std::string summary_;
  std::vector<FlagSpec> specs_;
  std::map<std::string, std::vector<std::string>> values_;
  bool help_ = false;
};

}  // namespace embedserve::cli
