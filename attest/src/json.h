// Strict JSON in, canonical JSON out: the attest module's only JSON rules, shared by DSSE, bundle and statement.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <forward_list>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/attest/dsse.h"
#include "quorate/core/json.h"
#include "quorate/core/status.h"

namespace quorate::attest::detail {

using Json = nlohmann::json;  // for documents we write (canonical_json)

struct JsonMember;

// One value of a parsed JsonDocument. Strings and member names are views into the parsed text, or into the
// document for strings that held escapes: valid while both live. A cheap copy.
class JsonValue {
 public:
  enum class Kind : uint8_t { kNull, kBool, kInt, kUint, kDouble, kString, kArray, kObject };

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_string() const { return kind_ == Kind::kString; }
  // kInt holds every integer that fits int64_t; kUint only larger ones.
  bool is_integer() const { return kind_ == Kind::kInt || kind_ == Kind::kUint; }

  std::string_view string() const { return {u_.str, size_}; }  // kString
  bool boolean() const { return u_.boolean; }                  // kBool
  int64_t int_value() const { return u_.i; }                   // kInt
  uint64_t uint_value() const { return u_.u; }                 // kUint
  double double_value() const { return u_.d; }                 // kDouble

  // The members of an object in document order, or the elements of an array (names empty); empty otherwise.
  std::span<const JsonMember> items() const;
  size_t size() const { return is_object() || is_array() ? size_ : 0; }
  // The member named `name`, or nullptr (also when this is not an object).
  const JsonValue* find(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }

 private:
  friend class JsonParser;
  Kind kind_ = Kind::kNull;
  size_t size_ = 0;  // string length, or the number of members or elements
  union {
    bool boolean;
    int64_t i;
    uint64_t u;
    double d;
    const char* str;
    size_t first;                // while parsing: the index of the first member in the document's slots
    const JsonMember* children;  // once parsed
  } u_{};
};

struct JsonMember {
  std::string_view name;  // empty for array elements
  JsonValue value;
};

inline std::span<const JsonMember> JsonValue::items() const {
  if (!is_object() && !is_array()) return {};
  return {u_.children, size_};
}

// A parsed JSON text, immutable once parsed (any number of threads may read it). Movable, not copyable (values
// point into it); the text it was parsed from must outlive it.
class JsonDocument {
 public:
  JsonDocument() = default;
  JsonDocument(JsonDocument&&) = default;
  JsonDocument& operator=(JsonDocument&&) = default;
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;

  const JsonValue& root() const { return root_; }

 private:
  friend class JsonParser;
  JsonValue root_;
  std::vector<JsonMember> slots_;           // every object's members and array's elements, each one contiguous
  std::forward_list<std::string> decoded_;  // strings that held escapes, decoded (list nodes never move)
};

// Parses `text` as one JSON value: valid UTF-8, no duplicate member names at any depth, nesting at most 64.
// bad_input "<what>: ..." otherwise. Never throws.
Result<JsonDocument> parse_strict_json(std::string_view text, std::string_view what);

// The value as nlohmann JSON, to embed a parsed part in a document we write.
Json to_json(const JsonValue& value);
// The members of an object sorted by name (byte order, as nlohmann and canonical JSON sort them): for loops
// whose result or first error must not depend on the order a document lists its members in.
std::vector<const JsonMember*> sorted_members(const JsonValue& obj);

// Field accessors for parsed documents: bad_input "<what>: <key> ..." when absent or of the wrong type.
Result<std::string_view> get_string(const JsonValue& obj, std::string_view key, std::string_view what);
Result<int64_t> get_int(const JsonValue& obj, std::string_view key, std::string_view what);
Result<const JsonValue*> get_object(const JsonValue& obj, std::string_view key, std::string_view what);
Result<const JsonValue*> get_array(const JsonValue& obj, std::string_view key, std::string_view what);
// bad_input naming the first member of `obj` (in byte order) that is not in `allowed`.
Status check_members(const JsonValue& obj, std::initializer_list<std::string_view> allowed, std::string_view what);

// The DSSE envelope as a JSON value, and back (strict: unknown members, strict base64, at least one signature).
Json envelope_json(const Envelope& e);
Result<Envelope> envelope_from_json(const JsonValue& j, std::string_view what);

}  // namespace quorate::attest::detail
