// Hex, base64 and UTF-8 checks.
#include "quorate/core/encoding.h"

#include <array>

namespace quorate {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<int8_t, 256> make_b64_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kB64[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kB64Table = make_b64_table();

}  // namespace

std::string hex_encode(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 15]);
  }
  return out;
}

std::string hex_encode(std::string_view bytes) {
  return hex_encode(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Result<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return Status::bad_input("hex string has odd length " + std::to_string(hex.size()));
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = hex_value(hex[i]);
    int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status::bad_input("non-hex character at offset " + std::to_string(hi < 0 ? i : i + 1));
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

bool is_lower_hex(std::string_view s, size_t length) {
  if (s.size() != length) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string base64_encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '=');  // written in place; the padding is already there
  char* o = out.data();
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    *o++ = kB64[v >> 18];
    *o++ = kB64[(v >> 12) & 63];
    *o++ = kB64[(v >> 6) & 63];
    *o++ = kB64[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = at(i) << 16 | (rest == 2 ? at(i + 1) << 8 : 0);
    *o++ = kB64[v >> 18];
    *o++ = kB64[(v >> 12) & 63];
    if (rest == 2) *o++ = kB64[(v >> 6) & 63];
  }
  return out;
}

Result<std::string> base64_decode(std::string_view b64) {
  if (b64.size() % 4 != 0)
    return Status::bad_input("base64 length " + std::to_string(b64.size()) + " is not a multiple of 4");
  // Written in place, not appended byte by byte: envelope payloads are kilobytes, decoded for every verification.
  std::string out(b64.size() / 4 * 3, '\0');
  char* o = out.data();
  auto value = [&](size_t i) { return kB64Table[static_cast<uint8_t>(b64[i])]; };
  auto invalid = [&](size_t i) {
    while (value(i) >= 0) ++i;
    return Status::bad_input("invalid base64 character at offset " + std::to_string(i));
  };
  size_t body = b64.empty() ? 0 : b64.size() - 4;  // every group but the last: no padding allowed
  for (size_t i = 0; i < body; i += 4) {
    int v0 = value(i), v1 = value(i + 1), v2 = value(i + 2), v3 = value(i + 3);
    if ((v0 | v1 | v2 | v3) < 0) return invalid(i);
    uint32_t n = static_cast<uint32_t>(v0 << 18 | v1 << 12 | v2 << 6 | v3);
    *o++ = static_cast<char>(n >> 16);
    *o++ = static_cast<char>((n >> 8) & 255);
    *o++ = static_cast<char>(n & 255);
  }
  for (size_t i = body; i < b64.size(); i += 4) {  // the last group, which may end in "=" or "=="
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = b64[i + k];
      if (c == '=' && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return Status::bad_input("base64 data after padding at offset " + std::to_string(i + k));
      v[k] = kB64Table[static_cast<uint8_t>(c)];
      if (v[k] < 0) return Status::bad_input("invalid base64 character at offset " + std::to_string(i + k));
    }
    uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    *o++ = static_cast<char>(n >> 16);
    if (pad < 2) *o++ = static_cast<char>((n >> 8) & 255);
    if (pad < 1) *o++ = static_cast<char>(n & 255);
    // Non-canonical encodings (stray bits under the padding) would let two strings mean one value.
    if ((pad == 1 && (n & 255) != 0) || (pad == 2 && (n & 0xffff) != 0)) {
      return Status::bad_input("non-canonical base64 padding bits");
    }
  }
  out.resize(static_cast<size_t>(o - out.data()));
  return out;
}

bool is_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else
      return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace quorate
