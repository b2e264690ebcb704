// Strict JSON parsing (RFC 8259: UTF-8, no duplicate members, bounded depth) into a JsonDocument, and the
// accessors the attest module reads documents with. The parser is our own rather than nlohmann's: it must
// reject duplicate members, and it builds no tree of maps and strings: values sit in one vector and strings stay
// views into the text, which makes envelope verification cost little more than the signature check itself.
#include "json.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <set>

namespace quorate::attest::detail {
namespace {

constexpr int kMaxDepth = 64;
// Up to this many members an object's names are compared one by one for duplicates; above, through a set, so
// that a hostile object with 100,000 members costs n log n, not n squared.
constexpr size_t kLinearMembers = 16;

// Whether one of the 8 bytes of `w` ends a run of plain string bytes: '"', '\\', a control character or a
// byte >= 0x80. Exact (the "has a zero byte" and "has a byte below n" word tests of Hacker's Delight, 6-1).
constexpr bool ends_plain_run(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101, kHighs = 0x8080808080808080;
  auto has_zero = [](uint64_t x) { return (x - kOnes) & ~x; };
  uint64_t quote = has_zero(w ^ (kOnes * '"')), backslash = has_zero(w ^ (kOnes * '\\'));
  uint64_t control = (w - kOnes * 0x20) & ~w;
  return ((w | quote | backslash | control) & kHighs) != 0;
}

}  // namespace

class JsonParser {
 public:
  JsonParser(std::string_view text, JsonDocument& doc)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), doc_(doc) {
    // A value takes at least a few bytes of text: room for most documents without growing.
    doc_.slots_.reserve(text.size() / 32 + 8);
    stack_.reserve(text.size() / 32 + 8);
  }

  // Parses the whole text into the document; false with error() set otherwise.
  bool parse() {
    skip_ws();
    if (!value(doc_.root_, 0)) return false;
    skip_ws();
    if (p_ != end_) return fail("unexpected data after the JSON value");
    // The slots no longer move: containers now point at their members.
    link(doc_.root_);
    for (auto& m : doc_.slots_) link(m.value);
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  bool fail(const char* why) {
    if (error_.empty()) error_ = std::string(why) + " at byte " + std::to_string(p_ - begin_);
    return false;
  }
  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool literal(const char* word, JsonValue::Kind kind, bool b, JsonValue& out) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return fail("invalid literal");
    p_ += n;
    out.kind_ = kind;
    out.u_.boolean = b;
    return true;
  }
  void link(JsonValue& v) const {
    if (v.is_object() || v.is_array()) v.u_.children = doc_.slots_.data() + v.u_.first;
  }

  bool value(JsonValue& out, int depth) {
    if (p_ == end_) return fail("unexpected end of input");
    switch (*p_) {
      case '{':
        return object(out, depth + 1);
      case '[':
        return array(out, depth + 1);
      case '"': {
        std::string_view s;
        if (!string(s)) return false;
        out.kind_ = JsonValue::Kind::kString;
        out.u_.str = s.data();
        out.size_ = s.size();
        return true;
      }
      case 't':
        return literal("true", JsonValue::Kind::kBool, true, out);
      case 'f':
        return literal("false", JsonValue::Kind::kBool, false, out);
      case 'n':
        return literal("null", JsonValue::Kind::kNull, false, out);
      default:
        return number(out);
    }
  }

  // Moves the members parsed since `base` from the stack to the document's slots, as `out`'s.
  void close(JsonValue& out, JsonValue::Kind kind, size_t base) {
    out.kind_ = kind;
    out.size_ = stack_.size() - base;
    out.u_.first = doc_.slots_.size();
    doc_.slots_.insert(doc_.slots_.end(), stack_.begin() + static_cast<ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
  }

  // Whether the object whose members start at stack_[base] already has a member `name`; `names` holds them
  // once there are more than kLinearMembers.
  bool duplicate(std::string_view name, size_t base, std::set<std::string_view>& names) const {
    if (stack_.size() - base < kLinearMembers) {
      for (size_t i = base; i < stack_.size(); ++i) {
        if (stack_[i].name == name) return true;
      }
      return false;
    }
    if (names.empty()) {
      for (size_t i = base; i < stack_.size(); ++i) names.insert(stack_[i].name);
    }
    return !names.insert(name).second;
  }

  bool object(JsonValue& out, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested deeper than 64 levels");
    ++p_;  // '{'
    size_t base = stack_.size();
    std::set<std::string_view> names;
    skip_ws();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      close(out, JsonValue::Kind::kObject, base);
      return true;
    }
    for (;;) {
      skip_ws();
      if (p_ == end_ || *p_ != '"') return fail("expected a member name");
      JsonMember m;
      if (!string(m.name)) return false;
      if (duplicate(m.name, base, names)) {
        error_ = "duplicate JSON member \"" + std::string(m.name) + "\"";
        return false;
      }
      skip_ws();
      if (p_ == end_ || *p_ != ':') return fail("expected ':'");
      ++p_;
      skip_ws();
      if (!value(m.value, depth)) return false;
      stack_.push_back(m);
      skip_ws();
      if (p_ == end_) return fail("unexpected end of input in an object");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        close(out, JsonValue::Kind::kObject, base);
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool array(JsonValue& out, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested deeper than 64 levels");
    ++p_;  // '['
    size_t base = stack_.size();
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      close(out, JsonValue::Kind::kArray, base);
      return true;
    }
    for (;;) {
      skip_ws();
      JsonMember m;
      if (!value(m.value, depth)) return false;
      stack_.push_back(m);
      skip_ws();
      if (p_ == end_) return fail("unexpected end of input in an array");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        close(out, JsonValue::Kind::kArray, base);
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  // One UTF-8 sequence starting at p_ (a byte >= 0x80): well-formed, shortest form, no surrogates.
  bool utf8_sequence() {
    auto b = [&](ptrdiff_t i) { return static_cast<unsigned char>(p_[i]); };
    unsigned char c = b(0);
    int n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4, cp = c & 0x07;
    } else {
      return fail("invalid UTF-8");
    }
    if (end_ - p_ < n) return fail("invalid UTF-8");
    for (int i = 1; i < n; ++i) {
      if ((b(i) & 0xC0) != 0x80) return fail("invalid UTF-8");
      cp = (cp << 6) | (b(i) & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return fail("invalid UTF-8");
    }
    p_ += n;
    return true;
  }

  bool hex4(uint32_t& out) {
    if (end_ - p_ < 4) return fail("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = p_[i];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return fail("invalid \\u escape");
      out = out * 16 + static_cast<uint32_t>(d);
    }
    p_ += 4;
    return true;
  }

  static void append_utf8(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool escape(std::string& out) {
    ++p_;  // '\\'
    if (p_ == end_) return fail("truncated escape");
    char c = *p_++;
    switch (c) {
      case '"':
        out += '"';
        return true;
      case '\\':
        out += '\\';
        return true;
      case '/':
        out += '/';
        return true;
      case 'b':
        out += '\b';
        return true;
      case 'f':
        out += '\f';
        return true;
      case 'n':
        out += '\n';
        return true;
      case 'r':
        out += '\r';
        return true;
      case 't':
        out += '\t';
        return true;
      case 'u':
        break;
      default:
        --p_;
        return fail("invalid escape");
    }
    uint32_t cp = 0;
    if (!hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail("lone high surrogate");
      p_ += 2;
      uint32_t lo = 0;
      if (!hex4(lo)) return false;
      if (lo < 0xDC00 || lo > 0xDFFF) return fail("invalid surrogate pair");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    append_utf8(out, cp);
    return true;
  }

  // A string starting at '"', as a view into the text; one that holds escapes is decoded into the document.
  bool string(std::string_view& out) {
    ++p_;  // '"'
    const char* start = p_;
    for (;;) {
      uint64_t w;
      while (end_ - p_ >= 8 && (std::memcpy(&w, p_, 8), !ends_plain_run(w))) p_ += 8;
      while (p_ < end_) {
        auto c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      if (p_ == end_) return fail("unterminated string");
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(start, static_cast<size_t>(p_ - start));
        ++p_;
        return true;
      }
      if (c == '\\') {
        std::string& decoded = doc_.decoded_.emplace_front(start, static_cast<size_t>(p_ - start));
        if (!escaped_string(decoded)) return false;
        out = decoded;
        return true;
      }
      if (c < 0x20) return fail("control character in a string");
      if (!utf8_sequence()) return false;
    }
  }

  // The rest of a string from its first escape (at p_), appended to `out`. Runs of plain ASCII are appended in
  // one go.
  bool escaped_string(std::string& out) {
    for (;;) {
      const char* run = p_;
      while (p_ < end_) {
        auto c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      out.append(run, static_cast<size_t>(p_ - run));
      if (p_ == end_) return fail("unterminated string");
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (!escape(out)) return false;
      } else if (c < 0x20) {
        return fail("control character in a string");
      } else {
        const char* seq = p_;
        if (!utf8_sequence()) return false;
        out.append(seq, static_cast<size_t>(p_ - seq));
      }
    }
  }

  bool digits() {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ > start;
  }

  bool number(JsonValue& out) {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return fail("invalid value");
    if (*p_ == '0') {
      ++p_;
    } else {
      digits();
    }
    bool integral = true;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      integral = false;
      if (!digits()) return fail("invalid number");
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      integral = false;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return fail("invalid number");
    }
    if (integral) {
      int64_t v = 0;
      auto r = std::from_chars(start, p_, v);
      if (r.ec == std::errc() && r.ptr == p_) {
        out.kind_ = JsonValue::Kind::kInt;
        out.u_.i = v;
        return true;
      }
      if (*start != '-') {
        uint64_t u = 0;
        auto ru = std::from_chars(start, p_, u);
        if (ru.ec == std::errc() && ru.ptr == p_) {
          out.kind_ = JsonValue::Kind::kUint;
          out.u_.u = u;
          return true;
        }
      }
    }
    double d = 0;
    auto r = std::from_chars(start, p_, d);
    if (r.ec != std::errc() || r.ptr != p_) return fail("number out of range");
    out.kind_ = JsonValue::Kind::kDouble;
    out.u_.d = d;
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  JsonDocument& doc_;
  std::vector<JsonMember> stack_;  // the members (or elements) of the objects and arrays being parsed
  std::string error_;
};

const JsonValue* JsonValue::find(std::string_view name) const {
  if (!is_object()) return nullptr;
  for (const auto& m : items()) {
    if (m.name == name) return &m.value;
  }
  return nullptr;
}

Result<JsonDocument> parse_strict_json(std::string_view text, std::string_view what) {
  JsonDocument doc;
  try {
    JsonParser parser(text, doc);
    if (!parser.parse()) {
      const std::string& e = parser.error();
      bool plain = e.rfind("duplicate", 0) == 0 || e.rfind("JSON nested", 0) == 0;
      return Status::bad_input(std::string(what) + ": " + (plain ? e : "invalid JSON: " + e));
    }
  } catch (const std::exception& e) {  // allocation failure
    return Status::bad_input(std::string(what) + ": invalid JSON: " + e.what());
  }
  return doc;
}

Json to_json(const JsonValue& value) {
  switch (value.kind()) {
    case JsonValue::Kind::kNull:
      return nullptr;
    case JsonValue::Kind::kBool:
      return value.boolean();
    case JsonValue::Kind::kInt:
      return value.int_value();
    case JsonValue::Kind::kUint:
      return value.uint_value();
    case JsonValue::Kind::kDouble:
      return value.double_value();
    case JsonValue::Kind::kString:
      return std::string(value.string());
    case JsonValue::Kind::kArray: {
      Json out = Json::array();
      for (const auto& m : value.items()) out.push_back(to_json(m.value));
      return out;
    }
    case JsonValue::Kind::kObject: {
      Json out = Json::object();
      for (const auto& m : value.items()) out.emplace(std::string(m.name), to_json(m.value));
      return out;
    }
  }
  return nullptr;
}

std::vector<const JsonMember*> sorted_members(const JsonValue& obj) {
  std::vector<const JsonMember*> out;
  if (!obj.is_object()) return out;
  for (const auto& m : obj.items()) out.push_back(&m);
  std::sort(out.begin(), out.end(), [](const JsonMember* a, const JsonMember* b) { return a->name < b->name; });
  return out;
}

namespace {

Status missing(std::string_view key, std::string_view what) {
  return Status::bad_input(std::string(what) + ": missing \"" + std::string(key) + "\"");
}
Status wrong_type(std::string_view key, std::string_view what, const char* expected) {
  return Status::bad_input(std::string(what) + ": \"" + std::string(key) + "\" is not " + expected);
}

}  // namespace

Result<std::string_view> get_string(const JsonValue& obj, std::string_view key, std::string_view what) {
  const JsonValue* v = obj.find(key);
  if (v == nullptr) return missing(key, what);
  if (!v->is_string()) return wrong_type(key, what, "a string");
  return v->string();
}

Result<int64_t> get_int(const JsonValue& obj, std::string_view key, std::string_view what) {
  const JsonValue* v = obj.find(key);
  if (v == nullptr) return missing(key, what);
  if (!v->is_integer()) return wrong_type(key, what, "an integer");
  if (v->kind() == JsonValue::Kind::kUint) {  // only integers above INT64_MAX are kUint
    return Status::bad_input(std::string(what) + ": \"" + std::string(key) + "\" is out of range");
  }
  return v->int_value();
}

Result<const JsonValue*> get_object(const JsonValue& obj, std::string_view key, std::string_view what) {
  const JsonValue* v = obj.find(key);
  if (v == nullptr) return missing(key, what);
  if (!v->is_object()) return wrong_type(key, what, "an object");
  return v;
}

Result<const JsonValue*> get_array(const JsonValue& obj, std::string_view key, std::string_view what) {
  const JsonValue* v = obj.find(key);
  if (v == nullptr) return missing(key, what);
  if (!v->is_array()) return wrong_type(key, what, "an array");
  return v;
}

Status check_members(const JsonValue& obj, std::initializer_list<std::string_view> allowed, std::string_view what) {
  const std::string_view* first = nullptr;  // the least unknown name, as a sorted walk would meet it first
  for (const auto& m : obj.items()) {
    bool known = std::find(allowed.begin(), allowed.end(), m.name) != allowed.end();
    if (!known && (first == nullptr || m.name < *first)) first = &m.name;
  }
  if (first != nullptr)
    return Status::bad_input(std::string(what) + ": unknown member \"" + std::string(*first) + "\"");
  return Status::ok_status();
}

}  // namespace quorate::attest::detail
