// Containerfile parsing (the Dockerfile reference's grammar): directives, logical lines, instructions and
// their flags, FROM resolution through global ARGs, and the word-level variable substitution.
#include "quorate/builder/containerfile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>

#include "quorate/builder/recipe.h"
#include "quorate/builder/reference.h"
#include "quorate/core/json.h"

namespace quorate::builder {
namespace {

using Vars = std::map<std::string, std::string>;

bool blank(char c) { return c == ' ' || c == '\t'; }
bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (blank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// ---- substitution: Docker's shell-word lexer ----

Status too_long(size_t limit) {
  return Status::bad_input("substitution makes more than " + std::to_string(limit) +
                           " bytes (the most one instruction's substituted words may hold)");
}

// Names and values together.
size_t bytes_of(const Vars& vars) {
  size_t n = 0;
  for (const auto& [k, v] : vars) n += k.size() + v.size();
  return n;
}

class Lexer {
 public:
  // `limit`: the bytes of variables' values the read may copy into its output.
  Lexer(std::string_view s, const Vars& vars, char escape, bool lenient, size_t limit)
      : s_(s), vars_(vars), escape_(escape), lenient_(lenient), limit_(limit) {}

  bool at_end() const { return pos_ >= s_.size(); }
  void skip_blanks() {
    while (!at_end() && blank(s_[pos_])) ++pos_;
  }

  // Appends to `out` until the end, an unquoted blank (when `split`) or `stop` (consumed; 0 = none).
  Status read(std::string& out, bool split, char stop) {
    while (!at_end()) {
      char c = s_[pos_];
      if (stop && c == stop) {
        ++pos_;
        return Status();
      }
      if (split && blank(c)) return Status();
      if (c == '\'') {
        QR_RETURN_IF_ERROR(single_quoted(out));
      } else if (c == '"') {
        QR_RETURN_IF_ERROR(double_quoted(out));
      } else if (c == '$') {
        QR_RETURN_IF_ERROR(dollar(out));
      } else if (c == escape_) {
        ++pos_;
        if (at_end()) {
          out += c;
        } else {
          out += s_[pos_++];
        }
      } else {
        out += c;
        ++pos_;
      }
    }
    if (stop) return Status::bad_input(std::string("missing '") + stop + "' in \"" + std::string(s_) + "\"");
    return Status();
  }

 private:
  Status single_quoted(std::string& out) {
    size_t end = s_.find('\'', pos_ + 1);
    if (end == std::string_view::npos)
      return Status::bad_input("unterminated single quote in \"" + std::string(s_) + "\"");
    out += s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return Status();
  }

  Status double_quoted(std::string& out) {
    ++pos_;
    while (!at_end()) {
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return Status();
      }
      if (c == '$') {
        QR_RETURN_IF_ERROR(dollar(out));
        continue;
      }
      ++pos_;
      if (c == escape_ && !at_end()) {
        char next = s_[pos_++];
        if (next != '"' && next != '$' && next != escape_) out += c;
        out += next;
        continue;
      }
      out += c;
    }
    return Status::bad_input("unterminated double quote in \"" + std::string(s_) + "\"");
  }

  std::optional<std::string> lookup(const std::string& name) const {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }

  // Appends a variable's value, refusing before the output can pass the limit (each `$A$A` doubles it).
  Status append_value(std::string& out, const std::string& value) {
    if (value.size() > limit_ - copied_) return too_long(kMaxSubstitutedBytes);
    copied_ += value.size();
    out += value;
    return Status();
  }

  Status dollar(std::string& out) {
    ++pos_;  // the '$'
    if (at_end()) {
      out += '$';
      return Status();
    }
    char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      return braced(out);
    }
    std::string name;
    if (std::isdigit(static_cast<unsigned char>(c))) {
      name = std::string(1, c);
      ++pos_;
    } else if (name_start(c)) {
      while (!at_end() && name_char(s_[pos_])) name += s_[pos_++];
    } else {
      out += '$';
      return Status();
    }
    return append_value(out, lookup(name).value_or(""));
  }

  Status braced(std::string& out) {
    // A ${X:-${Y:-…}} nesting recurses here: bounded, so that a Containerfile cannot exhaust the stack.
    if (depth_ >= kMaxNesting) {
      return Status::bad_input("substitutions nested deeper than " + std::to_string(kMaxNesting));
    }
    ++depth_;
    Status st = braced_body(out);
    --depth_;
    return st;
  }

  Status braced_body(std::string& out) {
    std::string name;
    while (!at_end() && name_char(s_[pos_])) name += s_[pos_++];
    if (name.empty() || at_end()) return Status::bad_input("bad substitution in \"" + std::string(s_) + "\"");
    char c = s_[pos_++];
    if (c == '}') return append_value(out, lookup(name).value_or(""));
    bool colon = c == ':';
    if (colon) {
      if (at_end()) return Status::bad_input("bad substitution in \"" + std::string(s_) + "\"");
      c = s_[pos_++];
    }
    if (c != '-' && c != '+' && c != '?') {
      return Status::bad_input(std::string("unsupported modifier '") + (colon ? ":" : "") + c + "' in ${" + name +
                               "} (supported: :- - :+ + :? ?)");
    }
    std::string word;
    QR_RETURN_IF_ERROR(read(word, false, '}'));
    auto value = lookup(name);
    bool set = value.has_value() && (!colon || !value->empty());
    if (c == '-') {
      if (set) return append_value(out, *value);
      out += word;
    } else if (c == '+') {
      out += set ? word : "";
    } else if (set) {
      return append_value(out, *value);
    } else if (!lenient_) {
      return Status::bad_input(name + ": " + (word.empty() ? "is not set" : word));
    }
    return Status();
  }

  static constexpr int kMaxNesting = 64;
  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;  // braced() calls in progress
  const Vars& vars_;
  char escape_;
  bool lenient_;  // checking syntax only: `${X?msg}` does not fail
  size_t limit_;
  size_t copied_ = 0;  // bytes of values appended so far
};

// `budget`: the bytes the instruction's substituted words may still take; what this word takes is deducted.
Result<std::string> expand_word(std::string_view word, const Vars& vars, char escape, bool lenient, size_t& budget) {
  Lexer lexer(word, vars, escape, lenient, budget);
  std::string out;
  QR_RETURN_IF_ERROR(lexer.read(out, false, 0));
  if (out.size() > budget) return too_long(kMaxSubstitutedBytes);
  budget -= out.size();
  return out;
}

Result<std::string> expand_word(std::string_view word, const Vars& vars, char escape, bool lenient) {
  size_t budget = kMaxSubstitutedBytes;
  return expand_word(word, vars, escape, lenient, budget);
}

Result<std::vector<std::string>> expand_words(std::string_view line, const Vars& vars, char escape, bool lenient) {
  Lexer lexer(line, vars, escape, lenient, kMaxSubstitutedBytes);
  std::vector<std::string> words;
  size_t total = 0;
  lexer.skip_blanks();
  while (!lexer.at_end()) {
    std::string word;
    QR_RETURN_IF_ERROR(lexer.read(word, true, 0));
    total += word.size();
    if (total > kMaxSubstitutedBytes) return too_long(kMaxSubstitutedBytes);
    words.push_back(std::move(word));
    lexer.skip_blanks();
  }
  return words;
}

// Splits at unquoted blanks, keeping quotes and escapes (Docker's parseWords): the words are substituted later.
std::vector<std::string> raw_words(std::string_view s, char escape) {
  std::vector<std::string> words;
  std::string word;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (!quote && blank(c)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      continue;
    }
    word += c;
    if (c == escape && quote != '\'' && i + 1 < s.size()) {
      word += s[++i];
    } else if (!quote && (c == '\'' || c == '"')) {
      quote = c;
    } else if (quote == c) {
      quote = 0;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

Result<std::vector<std::pair<std::string, std::string>>> pairs_of(std::string_view rest, const Vars& vars, char escape,
                                                                  bool lenient) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t budget = kMaxSubstitutedBytes;  // for all the pairs together
  auto words = raw_words(rest, escape);
  if (words.empty()) return Status::bad_input("needs at least one NAME=VALUE");
  if (words[0].find('=') == std::string::npos) {  // legacy `NAME VALUE…`
    if (words.size() < 2) return Status::bad_input("needs a value: NAME=VALUE or NAME VALUE");
    std::string_view value = trim(trim(rest).substr(words[0].size()));
    out.emplace_back(words[0], QR_TRY(expand_word(value, vars, escape, lenient, budget)));
    return out;
  }
  for (const auto& w : words) {
    auto eq = w.find('=');
    if (eq == std::string::npos) return Status::bad_input("\"" + w + "\" is not NAME=VALUE");
    std::string name = QR_TRY(expand_word(w.substr(0, eq), vars, escape, lenient, budget));
    if (name.empty()) return Status::bad_input("\"" + w + "\" has an empty name");
    out.emplace_back(std::move(name), QR_TRY(expand_word(w.substr(eq + 1), vars, escape, lenient, budget)));
  }
  return out;
}

// Go's time.ParseDuration: `[-+]?([0-9]*(\.[0-9]*)?UNIT)+` or "0", in nanoseconds; nullopt when malformed or
// past int64 (Go's "invalid duration"). Integers throughout, as Go computes, so every node gets the same value.
std::optional<int64_t> go_duration(std::string_view s) {
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  uint64_t total = 0;
  while (!s.empty()) {
    if (s[0] != '.' && !digit(s[0])) return std::nullopt;
    uint64_t whole = 0;
    size_t i = 0;
    for (; i < s.size() && digit(s[i]); ++i) {
      if (whole > kLimit / 10) return std::nullopt;
      whole = whole * 10 + static_cast<uint64_t>(s[i] - '0');
      if (whole > kLimit) return std::nullopt;
    }
    bool before = i > 0;
    s.remove_prefix(i);
    uint64_t fraction = 0;
    double scale = 1;
    bool after = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      size_t j = 0;
      bool overflow = false;  // further digits add no precision, as in Go
      for (; j < s.size() && digit(s[j]); ++j) {
        uint64_t next = fraction * 10 + static_cast<uint64_t>(s[j] - '0');
        if (overflow || fraction > (kLimit - 1) / 10 || next > kLimit) {
          overflow = true;
          continue;
        }
        fraction = next;
        scale *= 10;
      }
      after = j > 0;
      s.remove_prefix(j);
    }
    if (!before && !after) return std::nullopt;  // ".s"
    size_t u = 0;
    while (u < s.size() && s[u] != '.' && !digit(s[u])) ++u;
    static const std::map<std::string_view, uint64_t> kUnits = {
        {"ns", 1},         {"us", 1'000},        {"\u00b5s", 1'000},    {"\u03bcs", 1'000},
        {"ms", 1'000'000}, {"s", 1'000'000'000}, {"m", 60'000'000'000}, {"h", 3'600'000'000'000}};
    auto unit = kUnits.find(s.substr(0, u));
    if (unit == kUnits.end()) return std::nullopt;  // missing or unknown
    s.remove_prefix(u);
    if (whole > kLimit / unit->second) return std::nullopt;
    whole *= unit->second;
    // fraction < scale, so this is below one unit (at most 3.6e12 ns): exact enough in a double, as in Go.
    whole += static_cast<uint64_t>(static_cast<double>(fraction) * (static_cast<double>(unit->second) / scale));
    if (whole > kLimit || whole > kLimit - total) return std::nullopt;
    total += whole;
  }
  if (negative) return total == kLimit ? INT64_MIN : -static_cast<int64_t>(total);
  if (total >= kLimit) return std::nullopt;
  return static_cast<int64_t>(total);
}

// ---- logical lines ----

struct LogicalLine {
  int line = 0;
  std::string text;
};

std::vector<std::string_view> physical_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

bool is_comment(std::string_view line) {
  line = trim(line);
  return !line.empty() && line[0] == '#';
}

class FileParser {
 public:
  FileParser(std::string_view text, const std::string& file, const Vars& build_args)
      : lines_(physical_lines(text)), file_(file), build_args_(build_args) {}
  // Refused before parsing: no Containerfile is near it, and every check after is linear in the size or worse.
  static constexpr size_t kMaxBytes = 1 << 20;

  Result<Containerfile> parse();

 private:
  Status fail(int line, const std::string& what) const {
    return Status::bad_input(file_ + ":" + std::to_string(line) + ": " + what);
  }
  Status fail_at(int line, const Status& s) const {
    return Status::bad_input(file_ + ":" + std::to_string(line) + ": " + s.message());
  }

  Status read_directives();
  void join_lines();
  Status instruction(const LogicalLine& l);
  Status from(int line, std::string_view rest, std::vector<InstructionFlag> flags);
  Status global_arg(int line, std::string_view rest);
  Status check(Instruction& in, std::string_view rest);
  Status check_flags(const Instruction& in, std::initializer_list<const char*> allowed) const;
  Status check_copy(const Instruction& in) const;
  Status check_run(const Instruction& in) const;
  Status check_healthcheck(Instruction& in, std::string_view rest) const;
  Status stage_arg(const Instruction& in);
  Status check_from_reference(int line, const std::string& from) const;
  // The automatic platform ARGs (this builder makes linux/amd64 images) under the global ARGs read so far,
  // kept as each is read (rebuilding it for each ARG made many ARGs quadratic).
  const Vars& global_vars() const { return global_vars_; }
  // Sets (or, without a value, unsets) a global ARG, refusing past kMaxVariableBytes.
  Status set_global_var(int line, const GlobalArg& arg);

  std::vector<std::string_view> lines_;
  const std::string& file_;
  const Vars& build_args_;
  size_t first_content_ = 0;  // the first line after the directives
  std::vector<LogicalLine> logical_;
  std::set<std::string> declared_args_;
  Containerfile cf_;
  Vars global_vars_ = {{"BUILDPLATFORM", "linux/amd64"},  {"BUILDOS", "linux"},  {"BUILDARCH", "amd64"},
                       {"TARGETPLATFORM", "linux/amd64"}, {"TARGETOS", "linux"}, {"TARGETARCH", "amd64"}};
  size_t global_bytes_ = bytes_of(global_vars_);  // names and values in global_vars_
};

Status FileParser::read_directives() {
  std::set<std::string> seen;
  for (size_t i = 0; i < lines_.size(); ++i) {
    std::string_view l = trim(lines_[i]);
    first_content_ = i;
    if (l.size() < 2 || l[0] != '#') return Status();
    std::string_view body = trim(l.substr(1));
    auto eq = body.find('=');
    if (eq == std::string_view::npos) return Status();
    std::string name = lower(trim(body.substr(0, eq)));
    std::string value(trim(body.substr(eq + 1)));
    bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return name_char(c); });
    if (!word || (name != "escape" && name != "syntax" && name != "check")) return Status();  // a comment
    if (!seen.insert(name).second) return fail(static_cast<int>(i + 1), "parser directive '" + name + "' given twice");
    if (name == "escape") {
      if (value != "\\" && value != "`")
        return fail(static_cast<int>(i + 1), "escape must be \\ or `, not \"" + value + "\"");
      cf_.escape = value[0];
    } else if (name == "syntax") {
      cf_.syntax = value;
    }
  }
  first_content_ = lines_.size();
  return Status();
}

// A line ending in the escape character (then blanks) continues on the next; comment lines and blank lines
// inside a continuation are dropped, as Docker does.
bool strip_continuation(std::string& line, char escape) {
  size_t end = line.size();
  while (end > 0 && blank(line[end - 1])) --end;
  if (end == 0 || line[end - 1] != escape) return false;
  line.resize(end - 1);
  return true;
}

void FileParser::join_lines() {
  for (size_t i = first_content_; i < lines_.size(); ++i) {
    if (is_comment(lines_[i]) || trim(lines_[i]).empty()) continue;
    LogicalLine l{static_cast<int>(i + 1), std::string(trim(lines_[i]))};
    bool more = strip_continuation(l.text, cf_.escape);
    while (more && i + 1 < lines_.size()) {
      ++i;
      if (is_comment(lines_[i]) || trim(lines_[i]).empty()) continue;
      std::string next(lines_[i]);
      if (!next.empty() && next.back() == '\r') next.pop_back();
      more = strip_continuation(next, cf_.escape);
      l.text += next;
    }
    logical_.push_back(std::move(l));
  }
}

const std::map<std::string, Instruction::Kind>& kinds() {
  using K = Instruction::Kind;
  static const std::map<std::string, K> k = {
      {"RUN", K::kRun},
      {"COPY", K::kCopy},
      {"ADD", K::kAdd},
      {"ENV", K::kEnv},
      {"ARG", K::kArg},
      {"WORKDIR", K::kWorkdir},
      {"USER", K::kUser},
      {"SHELL", K::kShell},
      {"ENTRYPOINT", K::kEntrypoint},
      {"CMD", K::kCmd},
      {"LABEL", K::kLabel},
      {"EXPOSE", K::kExpose},
      {"STOPSIGNAL", K::kStopSignal},
      {"VOLUME", K::kVolume},
      {"HEALTHCHECK", K::kHealthcheck},
  };
  return k;
}

// `--name=value …` at the start of `rest`; `rest` is left at the first other word.
Result<std::vector<InstructionFlag>> take_flags(std::string_view& rest) {
  std::vector<InstructionFlag> flags;
  while (rest.substr(0, 2) == "--") {
    size_t end = 0;
    while (end < rest.size() && !blank(rest[end])) ++end;
    std::string_view word = rest.substr(2, end - 2);
    rest = trim(rest.substr(end));
    if (word.empty()) break;  // a lone "--" ends the flags
    auto eq = word.find('=');
    InstructionFlag f{std::string(word.substr(0, eq)),
                      eq == std::string_view::npos ? "" : std::string(word.substr(eq + 1))};
    for (const auto& g : flags) {
      if (g.name == f.name) return Status::bad_input("flag --" + f.name + " given twice");
    }
    flags.push_back(std::move(f));
  }
  return flags;
}

// JSON (exec) form when the text is a JSON array of strings; otherwise shell form, as Docker decides.
void set_form(Instruction& in, std::string_view rest) {
  in.exec_form = false;
  in.args = {std::string(rest)};
  if (rest.empty() || rest[0] != '[') return;
  auto j = parse_untrusted_json(rest);
  if (j.is_discarded() || !j.is_array()) return;
  std::vector<std::string> args;
  for (const auto& e : j) {
    if (!e.is_string()) return;
    args.push_back(e.get<std::string>());
  }
  in.exec_form = true;
  in.args = std::move(args);
}

bool has_heredoc(std::string_view s) {
  for (size_t i = s.find("<<"); i != std::string_view::npos; i = s.find("<<", i + 2)) {
    if (i + 2 < s.size() && s[i + 2] == '<') {
      i += 1;
      continue;
    }
    size_t j = i + 2;
    if (j < s.size() && s[j] == '-') ++j;
    if (j < s.size() && (name_start(s[j]) || s[j] == '"' || s[j] == '\'')) return true;
  }
  return false;
}

Status FileParser::check_flags(const Instruction& in, std::initializer_list<const char*> allowed) const {
  for (const auto& f : in.flags) {
    bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return f.name == a; });
    if (!known) {
      return fail(in.line,
                  "unknown or unsupported flag --" + f.name + " for " + upper(in.text.substr(0, in.text.find(' '))));
    }
    if (f.value.empty()) return fail(in.line, "flag --" + f.name + " needs a value (--" + f.name + "=VALUE)");
  }
  return Status();
}

std::optional<uint32_t> parse_octal_mode(std::string_view s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  uint32_t mode = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  return mode;
}

Status FileParser::check_copy(const Instruction& in) const {
  bool add = in.kind == Instruction::Kind::kAdd;
  for (const auto& f : in.flags) {
    if (add && (f.name == "checksum" || f.name == "keep-git-dir")) {
      return fail(in.line, "ADD --" + f.name + " is for URL and Git sources, which are refused (network)");
    }
  }
  if (add) {
    QR_RETURN_IF_ERROR(check_flags(in, {"chown", "chmod"}));
  } else {
    QR_RETURN_IF_ERROR(check_flags(in, {"from", "chown", "chmod"}));
  }
  if (auto chmod = in.flag("chmod"); chmod && chmod->find('$') == std::string::npos && !parse_octal_mode(*chmod)) {
    return fail(in.line, "--chmod=" + *chmod + " is not an octal mode (e.g. 0755)");
  }
  std::vector<std::string> words = in.exec_form ? in.args : raw_words(in.args[0], cf_.escape);
  if (words.size() < 2)
    return fail(in.line, upper(in.text.substr(0, in.text.find(' '))) + " needs a source and a destination");
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (is_url_source(words[i])) {
      return fail(in.line, (add ? "ADD" : "COPY") + std::string(" of a URL (") + words[i] +
                               ") is refused: a rebuild must not fetch from the network");
    }
  }
  if (!in.exec_form && has_heredoc(in.args[0])) return fail(in.line, "heredocs (<<EOF) are not supported");
  return Status();
}

Status FileParser::check_run(const Instruction& in) const {
  for (const auto& f : in.flags) {
    if (f.name == "mount") {
      std::string type = "bind";  // Docker's default mount type
      for (size_t pos = 0; pos <= f.value.size();) {
        size_t comma = std::min(f.value.find(',', pos), f.value.size());
        std::string_view part = std::string_view(f.value).substr(pos, comma - pos);
        if (part.substr(0, 5) == "type=") type = std::string(part.substr(5));
        pos = comma + 1;
      }
      if (type == "secret" || type == "ssh" || type == "cache") {
        return fail(in.line, "RUN --mount=type=" + type +
                                 " is refused: a rebuild must depend on nothing but the commit and pinned images");
      }
      return fail(in.line, "RUN --mount=type=" + type + " is not supported");
    }
    if (f.name == "network" && f.value != "none") {
      return fail(in.line, "RUN --network=" + f.value + " is refused: run steps have no network (only --network=none)");
    }
  }
  QR_RETURN_IF_ERROR(check_flags(in, {"network"}));
  if (!in.exec_form && trim(in.args[0]).empty()) return fail(in.line, "RUN needs a command");
  if (in.exec_form && in.args.empty()) return fail(in.line, "RUN needs a command");
  if (!in.exec_form && has_heredoc(in.args[0])) return fail(in.line, "heredocs (<<EOF) are not supported");
  return Status();
}

Status FileParser::check_healthcheck(Instruction& in, std::string_view rest) const {
  QR_RETURN_IF_ERROR(check_flags(in, {"interval", "timeout", "start-period", "start-interval", "retries"}));
  for (const auto& f : in.flags) {
    auto value = healthcheck_flag_value(f);
    if (!value.ok()) return fail_at(in.line, value.status());
  }
  auto words = raw_words(rest, cf_.escape);
  if (words.size() == 1 && upper(words[0]) == "NONE") {
    if (!in.flags.empty()) return fail(in.line, "HEALTHCHECK NONE takes no flags");
    in.healthcheck_none = true;
    in.args.clear();
    return Status();
  }
  if (words.empty() || upper(words[0]) != "CMD") return fail(in.line, "HEALTHCHECK needs NONE or CMD …");
  std::string_view cmd = trim(rest.substr(3));
  if (cmd.empty()) return fail(in.line, "HEALTHCHECK CMD needs a command");
  set_form(in, cmd);
  return Status();
}

Status FileParser::check(Instruction& in, std::string_view rest) {
  using K = Instruction::Kind;
  const std::string keyword = upper(in.text.substr(0, in.text.find(' ')));
  auto needs = [&](bool ok) { return ok ? Status() : fail(in.line, keyword + " needs an argument"); };
  switch (in.kind) {
    case K::kRun:
      return check_run(in);
    case K::kCopy:
    case K::kAdd:
      return check_copy(in);
    case K::kHealthcheck:
      return check_healthcheck(in, rest);
    default:
      break;
  }
  QR_RETURN_IF_ERROR(check_flags(in, {}));
  switch (in.kind) {
    case K::kEnv:
    case K::kLabel: {
      auto pairs = pairs_of(rest, {}, cf_.escape, true);
      if (!pairs.ok()) return fail(in.line, keyword + " " + pairs.status().message());
      return Status();
    }
    case K::kArg:
      return stage_arg(in);
    case K::kShell:
      if (!in.exec_form || in.args.empty())
        return fail(in.line, "SHELL needs the JSON form: SHELL [\"/bin/sh\", \"-c\"]");
      return Status();
    case K::kEntrypoint:
    case K::kCmd:
      return needs(in.exec_form || !rest.empty());
    default: {
      QR_RETURN_IF_ERROR(needs(!rest.empty()));
      auto words = expand_words(rest, {}, cf_.escape, true);
      if (!words.ok()) return fail_at(in.line, words.status());
      if ((in.kind == K::kUser || in.kind == K::kStopSignal) && words->size() != 1) {
        return fail(in.line, keyword + " takes exactly one argument");
      }
      return Status();
    }
  }
}

// ARG NAME[=default] … inside a stage: declared for the build-arg check; defaults checked for syntax.
Status FileParser::stage_arg(const Instruction& in) {
  auto words = raw_words(in.args[0], cf_.escape);
  if (words.empty()) return fail(in.line, "ARG needs a name");
  for (const auto& w : words) {
    std::string name = w.substr(0, w.find('='));
    if (name.empty() || !std::all_of(name.begin(), name.end(), name_char)) {
      return fail(in.line, "ARG name \"" + name + "\" must be letters, digits and _");
    }
    if (w.find('=') != std::string::npos) {
      auto v = expand_word(w.substr(w.find('=') + 1), {}, cf_.escape, true);
      if (!v.ok()) return fail_at(in.line, v.status());
    }
    declared_args_.insert(name);
  }
  return Status();
}

Status FileParser::global_arg(int line, std::string_view rest) {
  auto words = raw_words(rest, cf_.escape);
  if (words.empty()) return fail(line, "ARG needs a name");
  size_t budget = kMaxSubstitutedBytes;  // for the line's defaults together
  for (const auto& w : words) {
    auto eq = w.find('=');
    std::string name = w.substr(0, eq);
    if (name.empty() || !std::all_of(name.begin(), name.end(), name_char)) {
      return fail(line, "ARG name \"" + name + "\" must be letters, digits and _");
    }
    GlobalArg arg{name, std::nullopt};
    if (auto it = build_args_.find(name); it != build_args_.end()) {
      arg.value = it->second;
    } else if (eq != std::string::npos) {
      auto v = expand_word(w.substr(eq + 1), global_vars(), cf_.escape, false, budget);
      if (!v.ok()) return fail_at(line, v.status());
      arg.value = *v;
    }
    declared_args_.insert(name);
    QR_RETURN_IF_ERROR(set_global_var(line, arg));
    cf_.global_args.push_back(std::move(arg));
  }
  return Status();
}

Status FileParser::set_global_var(int line, const GlobalArg& arg) {
  auto it = global_vars_.find(arg.name);
  size_t old = it == global_vars_.end() ? 0 : arg.name.size() + it->second.size();
  size_t now = arg.value ? arg.name.size() + arg.value->size() : 0;
  if (global_bytes_ - old + now > kMaxVariableBytes) {
    return fail(line, "ARG " + arg.name + ": the global ARGs would hold " + std::to_string(global_bytes_ - old + now) +
                          " bytes, more than " + std::to_string(kMaxVariableBytes));
  }
  global_bytes_ = global_bytes_ - old + now;
  if (arg.value) {
    global_vars_[arg.name] = *arg.value;
  } else {
    global_vars_.erase(arg.name);
  }
  return Status();
}

Status FileParser::check_from_reference(int line, const std::string& from) const {
  auto ref = parse_image_reference(from, "FROM image");
  if (!ref.ok()) return fail_at(line, ref.status());
  if (ref->digest.empty()) {
    return fail(line, "FROM " + from +
                          " is not pinned: write NAME@sha256:HEX (a tag can move; a rebuild must name "
                          "the exact bytes it starts from)");
  }
  return Status();
}

Status FileParser::from(int line, std::string_view rest, std::vector<InstructionFlag> flags) {
  Vars vars = global_vars();
  for (const auto& f : flags) {
    if (f.name != "platform") return fail(line, "unknown or unsupported flag --" + f.name + " for FROM");
    auto p = expand_word(f.value, vars, cf_.escape, false);
    if (!p.ok()) return fail_at(line, p.status());
    if (*p != "linux/amd64")
      return fail(line, "FROM --platform=" + *p + " is not supported (this builder makes linux/amd64)");
  }
  auto words = expand_words(rest, vars, cf_.escape, false);
  if (!words.ok()) return fail_at(line, words.status());
  if (words->size() != 1 && !(words->size() == 3 && lower((*words)[1]) == "as")) {
    return fail(line, "FROM takes IMAGE [AS NAME]");
  }
  Stage stage;
  stage.line = line;
  stage.from = (*words)[0];
  if (words->size() == 3) {
    stage.name = lower((*words)[2]);
    bool ok = std::isalpha(static_cast<unsigned char>(stage.name[0])) &&
              std::all_of(stage.name.begin(), stage.name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
              });
    if (!ok) return fail(line, "stage name \"" + stage.name + "\" must start with a letter and hold [a-z0-9-_.]");
    for (const auto& s : cf_.stages) {
      if (s.name == stage.name)
        return fail(line, "stage name \"" + stage.name + "\" is already used on line " + std::to_string(s.line));
    }
  }
  std::string from_lower = lower(stage.from);
  if (from_lower == "scratch") {
    stage.base = Stage::Base::kScratch;
  } else if (auto it = std::find_if(cf_.stages.begin(), cf_.stages.end(),
                                    [&](const Stage& s) { return s.name == from_lower; });
             it != cf_.stages.end()) {
    stage.base = Stage::Base::kStage;
    stage.base_stage = static_cast<size_t>(it - cf_.stages.begin());
  } else {
    QR_RETURN_IF_ERROR(check_from_reference(line, stage.from));
    auto ref = parse_image_reference(stage.from, "FROM image");
    stage.base = Stage::Base::kImage;
    stage.image_name = ref->name;
    stage.digest = ref->digest;
  }
  cf_.stages.push_back(std::move(stage));
  return Status();
}

Status FileParser::instruction(const LogicalLine& l) {
  std::string_view text = l.text;
  size_t sp = 0;
  while (sp < text.size() && !blank(text[sp])) ++sp;
  std::string keyword = upper(text.substr(0, sp));
  std::string_view rest = trim(text.substr(sp));
  auto flags = take_flags(rest);
  if (!flags.ok()) return fail_at(l.line, flags.status());
  if (keyword == "FROM") return from(l.line, rest, std::move(*flags));
  if (keyword == "ONBUILD") {
    return fail(l.line, "ONBUILD is refused: it runs instructions of another Containerfile, invisibly to this one");
  }
  auto kind = kinds().find(keyword);
  if (kind == kinds().end()) return fail(l.line, "unknown or unsupported instruction " + keyword);
  if (cf_.stages.empty()) {
    if (kind->second != Instruction::Kind::kArg)
      return fail(l.line, keyword + " before the first FROM (only ARG may come first)");
    if (!flags->empty()) return fail(l.line, "unknown or unsupported flag --" + (*flags)[0].name + " for ARG");
    return global_arg(l.line, rest);
  }
  Instruction in;
  in.kind = kind->second;
  in.line = l.line;
  in.text = keyword + (text.size() > sp ? std::string(text.substr(sp)) : "");
  in.flags = std::move(*flags);
  set_form(in, rest);
  QR_RETURN_IF_ERROR(check(in, rest));
  cf_.stages.back().instructions.push_back(std::move(in));
  return Status();
}

Status check_copy_from(const Containerfile& cf, const std::string& file) {
  for (size_t s = 0; s < cf.stages.size(); ++s) {
    for (const auto& in : cf.stages[s].instructions) {
      auto from = in.flag("from");
      if (!from || from->find('$') != std::string::npos) continue;
      std::string name = lower(*from);
      bool index = !name.empty() && std::all_of(name.begin(), name.end(), digit);
      if (index && name.size() < 6 && std::stoul(name) < s) continue;
      if (!index && std::any_of(cf.stages.begin(), cf.stages.begin() + static_cast<long>(s),
                                [&](const Stage& st) { return st.name == name; })) {
        continue;
      }
      std::string where = file + ":" + std::to_string(in.line) + ": ";
      auto ref = parse_image_reference(*from, "COPY --from");
      if (index || !ref.ok() || ref->digest.empty()) {
        return Status::bad_input(where + "COPY --from=" + *from +
                                 " names no earlier stage and no image pinned by digest (NAME@sha256:HEX)");
      }
    }
  }
  return Status();
}

Result<Containerfile> FileParser::parse() {
  cf_.file = file_;
  cf_.build_args = build_args_;
  QR_RETURN_IF_ERROR(read_directives());
  join_lines();
  for (const auto& l : logical_) QR_RETURN_IF_ERROR(instruction(l));
  if (cf_.stages.empty()) return Status::bad_input(file_ + ": no FROM instruction");
  QR_RETURN_IF_ERROR(check_copy_from(cf_, file_));
  for (const auto& [name, value] : build_args_) {
    if (!declared_args_.count(name)) {
      return Status::bad_input(file_ + ": build arg " + name +
                               " is not declared by any ARG (refused rather than ignored)");
    }
  }
  return std::move(cf_);
}

}  // namespace

std::optional<std::string> Instruction::flag(std::string_view name) const {
  for (const auto& f : flags) {
    if (f.name == name) return f.value;
  }
  return std::nullopt;
}

bool is_containerfile_path(std::string_view path) {
  std::string_view base = path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  auto ends = [&](std::string_view suffix) {
    return base.size() > suffix.size() && base.substr(base.size() - suffix.size()) == suffix;
  };
  return base == "Containerfile" || base == "Dockerfile" || ends(".Containerfile") || ends(".Dockerfile");
}

Result<Containerfile> parse_containerfile(std::string_view text, const std::string& file,
                                          const std::map<std::string, std::string>& build_args) {
  if (text.size() > FileParser::kMaxBytes) {
    return Status::bad_input(file + ": " + std::to_string(text.size()) + " bytes; a Containerfile may have at most " +
                             std::to_string(FileParser::kMaxBytes));
  }
  FileParser parser(text, file, build_args);
  return parser.parse();
}

Result<std::string> substitute_word(std::string_view word, const std::map<std::string, std::string>& vars,
                                    char escape) {
  return expand_word(word, vars, escape, false);
}

Result<std::vector<std::string>> substitute_words(std::string_view line, const std::map<std::string, std::string>& vars,
                                                  char escape) {
  return expand_words(line, vars, escape, false);
}

Result<std::vector<std::pair<std::string, std::string>>> parse_pairs(std::string_view rest,
                                                                     const std::map<std::string, std::string>& vars,
                                                                     char escape) {
  return pairs_of(trim(rest), vars, escape, false);
}

Result<int64_t> healthcheck_flag_value(const InstructionFlag& flag) {
  const std::string what = "HEALTHCHECK --" + flag.name + "=" + flag.value;
  if (flag.name == "retries") {
    std::string_view s = flag.value;
    bool negative = !s.empty() && s[0] == '-';
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    if (s.empty() || !std::all_of(s.begin(), s.end(), digit))
      return Status::bad_input(what + " is not a count (decimal digits)");
    constexpr int64_t kMaxRetries = 2'147'483'647;  // BuildKit reads it as a 32-bit integer
    int64_t n = 0;
    for (char c : s) {
      n = n * 10 + (c - '0');
      if (n > kMaxRetries) return Status::bad_input(what + " is more than " + std::to_string(kMaxRetries));
    }
    if (negative && n != 0) return Status::bad_input(what + " is negative");
    return n;
  }
  auto ns = go_duration(flag.value);
  if (!ns) {
    return Status::bad_input(what +
                             " is not a duration (Go's syntax: 30s, 1m30s, 1.5h; units ns us ms s m h; at most "
                             "2562047h47m16.854775807s)");
  }
  if (*ns != 0 && *ns < 1'000'000) return Status::bad_input(what + " is less than 1ms (0 means the default)");
  return *ns;
}

bool is_url_source(std::string_view s) {
  auto colon = s.find("://");
  if (colon != std::string_view::npos && colon > 0 && name_start(s[0])) {
    bool scheme = std::all_of(s.begin(), s.begin() + static_cast<long>(colon), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '.' || c == '-';
    });
    if (scheme) return true;
  }
  auto at = s.find('@');
  auto c = s.find(':');
  auto slash = s.find('/');
  return at != std::string_view::npos && c != std::string_view::npos && at > 0 && c > at + 1 &&
         (slash == std::string_view::npos || slash > c);
}

Result<DockerIgnore> DockerIgnore::parse(std::string_view text, const std::string& file) {
  if (text.size() > FileParser::kMaxBytes) {
    return Status::bad_input(file + ": " + std::to_string(text.size()) + " bytes; a .dockerignore may have at most " +
                             std::to_string(FileParser::kMaxBytes));
  }
  DockerIgnore out;
  auto lines = physical_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = trim(lines[i]);
    if (l.empty() || l[0] == '#') continue;
    Pattern p;
    if (l[0] == '!') {
      p.negated = true;
      l = trim(l.substr(1));
    }
    std::vector<std::string> parts;
    size_t pos = 0;
    while (pos <= l.size()) {
      size_t slash = l.find('/', pos);
      if (slash == std::string_view::npos) slash = l.size();
      std::string part(l.substr(pos, slash - pos));
      pos = slash + 1;
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (parts.empty())
          return Status::bad_input(file + ":" + std::to_string(i + 1) + ": pattern \"" + std::string(l) +
                                   "\" leaves the context");
        parts.pop_back();
        continue;
      }
      parts.push_back(std::move(part));
    }
    if (parts.empty()) continue;
    for (const auto& part : parts) p.glob += (p.glob.empty() ? "" : "/") + part;
    out.patterns_.push_back(std::move(p));
  }
  return out;
}

bool DockerIgnore::excluded(std::string_view path) const {
  bool out = false;
  for (const auto& p : patterns_) {
    bool hit = glob_match(p.glob, path);
    for (size_t slash = path.find('/'); !hit && slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
      hit = glob_match(p.glob, path.substr(0, slash));
    }
    if (hit) out = !p.negated;
  }
  return out;
}

}  // namespace quorate::builder
