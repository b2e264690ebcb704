// check_toml_depth: one pass over TOML text that counts how deep each key, [table] header, array and inline
// table nests, before toml++ (which recurses once per level of a dotted key) ever sees the text.
//
// The scan follows TOML's lexical rules exactly where the text is TOML (four kinds of strings, comments,
// CRLF, the BOM) so that a '#' or a quote inside a string cannot hide a key nor make one up, and is lenient
// elsewhere: where the text stops being TOML it stops counting, since toml++ then stops with an error at or
// before the same point.
#include <algorithm>
#include <string>
#include <string_view>

#include "quorate/config/toml_file.h"

namespace quorate::config {
namespace {

// A bare key's characters, and more: any byte TOML does not use to end a key (non-ASCII ones included, as
// toml++'s unreleased Unicode bare keys are).
bool is_key_byte(char c) {
  return std::string_view(" \t\r\n.=[]{}\"'#,").find(c) == std::string_view::npos && c != '\0';
}

bool ends_scalar(char c) { return std::string_view(",]}#\r\n").find(c) != std::string_view::npos; }

class DepthScan {
 public:
  DepthScan(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  // OK when every nesting is within kMaxTomlDepth up to where the text ends or stops being TOML.
  Status run() {
    if (at("\xEF\xBB\xBF")) i_ += 3;
    for (;;) {
      skip_space();
      if (i_ >= s_.size()) return Status();
      Result<bool> more = at('[') ? header() : key_value(header_depth_);
      if (!more.ok()) return more.status();
      if (!*more) return rest_of_text();
    }
  }

 private:
  bool at(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool at(std::string_view t) const { return s_.substr(std::min(i_, s_.size()), t.size()) == t; }

  void skip_blanks() {
    while (at(' ') || at('\t')) ++i_;
  }
  // Blanks, line breaks and comments: what may stand between statements and between array elements.
  void skip_space() {
    for (;;) {
      skip_blanks();
      if (at('#')) {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (at('\n')) {
        ++line_;
        ++i_;
      } else if (at('\r')) {
        ++i_;
      } else {
        return;
      }
    }
  }

  Status too_deep(int line) const {
    return Status::bad_input(name_ + ":" + std::to_string(line) + ": keys nested deeper than " +
                             std::to_string(kMaxTomlDepth) +
                             " levels (dotted key parts, [table] parts, arrays and inline tables together)");
  }

  // Past the string at i_, any of the four kinds; false when it does not end as TOML says it must.
  bool string() {
    const char q = s_[i_];
    const std::string_view triple = q == '"' ? "\"\"\"" : "'''";
    if (!at(triple)) {
      for (++i_; i_ < s_.size() && s_[i_] != '\n'; ++i_) {
        if (s_[i_] == '\\' && q == '"') {
          ++i_;
        } else if (s_[i_] == q) {
          ++i_;
          return true;
        }
      }
      return false;
    }
    i_ += 3;
    while (i_ < s_.size()) {
      if (s_[i_] == '\\' && q == '"') {
        ++i_;  // an escaped quote or line break is content
      } else if (at(triple)) {
        for (int n = 0; n < 5 && at(q); ++n) ++i_;  // up to two quotes before the closing three are content
        return true;
      }
      if (at('\n')) ++line_;
      ++i_;
    }
    return false;
  }

  // The number of parts of the dotted key at i_; 0 when there is no key there.
  size_t key() {
    size_t parts = 0;
    for (;;) {
      skip_blanks();
      if (at('"') || at('\'')) {
        if (at("\"\"\"") || at("'''") || !string()) return 0;
      } else {
        const size_t start = i_;
        while (i_ < s_.size() && is_key_byte(s_[i_])) ++i_;
        if (i_ == start) return 0;
      }
      ++parts;
      skip_blanks();
      if (!at('.')) return parts;
      ++i_;
    }
  }

  // "[a.b]" or "[[a.b]]": the depth later keys start from. False when it is not a header.
  Result<bool> header() {
    const int line = line_;
    const bool array = at("[[");
    i_ += array ? 2 : 1;
    const size_t parts = key();
    skip_blanks();
    if (parts == 0 || !at(array ? "]]" : "]")) return false;
    i_ += array ? 2 : 1;
    if (parts + array > kMaxTomlDepth) return too_deep(line);
    header_depth_ = parts + array;
    return true;
  }

  // "a.b = value" in a table `depth` levels deep. False when it is not a key/value pair.
  Result<bool> key_value(size_t depth) {
    const int line = line_;
    const size_t parts = key();
    skip_blanks();
    if (parts == 0 || !at('=')) return false;
    if (depth + parts > kMaxTomlDepth) return too_deep(line);
    ++i_;
    skip_blanks();
    return value(depth + parts);
  }

  // A value whose key is `depth` levels deep. False when it is not a value.
  Result<bool> value(size_t depth) {
    if (at('"') || at('\'')) return string();
    if (at('[')) return array(depth + 1);
    if (at('{')) return inline_table(depth);
    const size_t start = i_;
    while (i_ < s_.size() && !ends_scalar(s_[i_])) ++i_;  // a number, boolean or date-time ("1979-05-27 07:32:00")
    return i_ > start;
  }

  Result<bool> array(size_t depth) {
    if (depth > kMaxTomlDepth) return too_deep(line_);
    ++i_;
    for (;;) {
      skip_space();
      if (at(']')) break;
      const bool element = QR_TRY(value(depth));
      if (!element) return false;
      skip_space();
      if (at(']')) break;
      if (!at(',')) return false;
      ++i_;
    }
    ++i_;
    return true;
  }

  Result<bool> inline_table(size_t depth) {
    ++i_;
    for (;;) {
      skip_space();  // newlines and comments are not TOML 1.0 here, but toml++ may take them
      if (at('}')) break;
      const bool member = QR_TRY(key_value(depth));
      if (!member) return false;
      skip_space();
      if (at('}')) break;
      if (!at(',')) return false;
      ++i_;
    }
    ++i_;
    return true;
  }

  // Where the scan stopped, the text is not TOML as it reads it, and toml++ should stop with an error at or
  // before that point. Should toml++ read further than this scan understands, a dotted key it would recurse
  // into still lies on one line: the rest of the text is refused where a line holds more dots than a key may.
  Status rest_of_text() {
    size_t dots = 0;
    for (; i_ < s_.size(); ++i_) {
      if (s_[i_] == '\n') {
        ++line_;
        dots = 0;
      } else if (s_[i_] == '.' && ++dots >= kMaxTomlDepth) {
        return too_deep(line_);
      }
    }
    return Status();
  }

  std::string_view s_;
  const std::string& name_;
  size_t i_ = 0;
  int line_ = 1;
  size_t header_depth_ = 0;
};

}  // namespace

Status check_toml_depth(std::string_view text, const std::string& name) { return DepthScan(text, name).run(); }

}  // namespace quorate::config
