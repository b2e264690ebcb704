// Strict JSON parsing (RFC 8259: UTF-8, no duplicate members, bounded depth) into nlohmann::json, and canonical
// serialization. The parser is our own rather than nlohmann's: it must reject duplicate members, and it scans
// strings in bulk, which makes envelope verification cost little more than the signature check itself.
#include "json.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace quorate::attest::detail {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(std::string_view text) : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

  // Parses the whole text into `out`; false with error() set otherwise.
  bool parse(Json& out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    if (p_ != end_) return fail("unexpected data after the JSON value");
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
  bool literal(const char* word, Json value, Json& out) {
    size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return fail("invalid literal");
    p_ += n;
    out = std::move(value);
    return true;
  }

  bool value(Json& out, int depth) {
    if (p_ == end_) return fail("unexpected end of input");
    switch (*p_) {
      case '{':
        return object(out, depth + 1);
      case '[':
        return array(out, depth + 1);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        out = std::move(s);
        return true;
      }
      case 't':
        return literal("true", true, out);
      case 'f':
        return literal("false", false, out);
      case 'n':
        return literal("null", nullptr, out);
      default:
        return number(out);
    }
  }

  bool object(Json& out, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested deeper than 64 levels");
    ++p_;  // '{'
    out = Json::object();
    skip_ws();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_ws();
      if (p_ == end_ || *p_ != '"') return fail("expected a member name");
      std::string key;
      if (!string(key)) return false;
      if (out.contains(key)) {
        error_ = "duplicate JSON member \"" + key + "\"";
        return false;
      }
      skip_ws();
      if (p_ == end_ || *p_ != ':') return fail("expected ':'");
      ++p_;
      skip_ws();
      Json v;
      if (!value(v, depth)) return false;
      out.emplace(std::move(key), std::move(v));
      skip_ws();
      if (p_ == end_) return fail("unexpected end of input in an object");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool array(Json& out, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested deeper than 64 levels");
    ++p_;  // '['
    out = Json::array();
    skip_ws();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      skip_ws();
      Json v;
      if (!value(v, depth)) return false;
      out.push_back(std::move(v));
      skip_ws();
      if (p_ == end_) return fail("unexpected end of input in an array");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
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

  // A string starting at '"'. Runs of plain ASCII are appended in one go.
  bool string(std::string& out) {
    ++p_;  // '"'
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

  bool number(Json& out) {
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
        out = v;
        return true;
      }
      if (*start != '-') {
        uint64_t u = 0;
        auto ru = std::from_chars(start, p_, u);
        if (ru.ec == std::errc() && ru.ptr == p_) {
          out = u;
          return true;
        }
      }
    }
    double d = 0;
    auto r = std::from_chars(start, p_, d);
    if (r.ec != std::errc() || r.ptr != p_) return fail("number out of range");
    out = d;
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::string error_;
};

}  // namespace

Result<Json> parse_strict_json(std::string_view text, std::string_view what) {
  Parser parser(text);
  Json value;
  try {
    if (!parser.parse(value)) {
      const std::string& e = parser.error();
      bool plain = e.rfind("duplicate", 0) == 0 || e.rfind("JSON nested", 0) == 0;
      return Status::bad_input(std::string(what) + ": " + (plain ? e : "invalid JSON: " + e));
    }
  } catch (const std::exception& e) {  // allocation failure, or a nlohmann invariant
    return Status::bad_input(std::string(what) + ": invalid JSON: " + e.what());
  }
  return value;
}

Result<std::string> get_string(const Json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::bad_input(std::string(what) + ": missing \"" + key + "\"");
  if (!it->is_string()) return Status::bad_input(std::string(what) + ": \"" + key + "\" is not a string");
  return it->get<std::string>();
}

Result<int64_t> get_int(const Json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::bad_input(std::string(what) + ": missing \"" + key + "\"");
  if (!it->is_number_integer()) return Status::bad_input(std::string(what) + ": \"" + key + "\" is not an integer");
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    return Status::bad_input(std::string(what) + ": \"" + key + "\" is out of range");
  }
  return it->get<int64_t>();
}

Result<const Json*> get_object(const Json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::bad_input(std::string(what) + ": missing \"" + key + "\"");
  if (!it->is_object()) return Status::bad_input(std::string(what) + ": \"" + key + "\" is not an object");
  return &*it;
}

Result<const Json*> get_array(const Json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::bad_input(std::string(what) + ": missing \"" + key + "\"");
  if (!it->is_array()) return Status::bad_input(std::string(what) + ": \"" + key + "\" is not an array");
  return &*it;
}

Status check_members(const Json& obj, std::initializer_list<std::string_view> allowed, std::string_view what) {
  for (const auto& [k, v] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      return Status::bad_input(std::string(what) + ": unknown member \"" + k + "\"");
    }
  }
  return Status::ok_status();
}

}  // namespace quorate::attest::detail
