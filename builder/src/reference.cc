// The image reference grammar of the OCI distribution spec (github.com/distribution/reference), by hand.
#include "quorate/builder/reference.h"

#include <cstdio>
#include <vector>

#include "quorate/core/sha256.h"

namespace quorate::builder {
namespace {

constexpr size_t kMaxNameBytes = 255;
constexpr size_t kMaxTagBytes = 128;

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool word(char c) { return alnum(c) || c == '_'; }

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos));
    if (next == std::string_view::npos) return out;
    pos = next + 1;
  }
}

// alpha-numeric (separator alpha-numeric)*, separator = "." | "_" | "__" | "-"+
bool path_component(std::string_view c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

// domain-component ("." domain-component)* [":" port]
bool domain(std::string_view d) {
  auto colon = d.find(':');
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos) return false;
    d = d.substr(0, colon);
  }
  for (auto part : split(d, '.')) {
    if (part.empty() || !alnum(part.front()) || !alnum(part.back())) return false;
    for (char c : part) {
      if (!alnum(c) && c != '-') return false;
    }
  }
  return true;
}

// Like Docker: the first component is a registry when there is more than one and it has a "." or ":" or is
// "localhost" (or holds an uppercase letter, which a path component may not).
bool is_domain(std::string_view first, size_t components) {
  if (components < 2) return false;
  if (first == "localhost") return true;
  for (char c : first) {
    if (c == '.' || c == ':' || (c >= 'A' && c <= 'Z')) return true;
  }
  return false;
}

Status fail(std::string_view field, std::string_view value, const std::string& what) {
  return Status::bad_input(std::string(field) + " " + quote_for_message(value) + " " + what);
}

}  // namespace

std::string quote_for_message(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text.substr(0, 300)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (text.size() > 300 ? "\"…" : "\"");
}

Status check_image_name(std::string_view name, std::string_view field) {
  if (name.empty()) return Status::bad_input(std::string(field) + " is empty");
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return fail(field, name, "contains a control character (newline, NUL…); an image name may not");
    }
  }
  if (name.size() > kMaxNameBytes) return fail(field, name, "is longer than 255 bytes");
  auto parts = split(name, '/');
  size_t first = 0;
  if (is_domain(parts[0], parts.size())) {
    if (!domain(parts[0])) return fail(field, name, "has an invalid registry \"" + std::string(parts[0]) + "\"");
    first = 1;
  }
  for (size_t i = first; i < parts.size(); ++i) {
    if (!path_component(parts[i])) {
      return fail(field, name,
                  "is not a valid image name: each '/'-separated part must be lowercase letters and digits, "
                  "joined by '.', '_', '__' or '-' (OCI distribution grammar)");
    }
  }
  return Status();
}

Status check_image_tag(std::string_view tag, std::string_view field) {
  if (tag.empty()) return Status::bad_input(std::string(field) + " is empty");
  bool ok = tag.size() <= kMaxTagBytes && word(tag[0]);
  for (char c : tag) ok = ok && (word(c) || c == '.' || c == '-');
  if (!ok) return fail(field, tag, "is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");
  return Status();
}

Result<ImageReference> parse_image_reference(std::string_view reference, std::string_view field) {
  ImageReference ref;
  std::string_view rest = reference;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(rest.substr(at + 1));
    if (!check_digest(ref.digest).ok()) {
      return fail(field, reference, "has an invalid digest after '@' (expected sha256: and 64 lowercase hex digits)");
    }
    rest = rest.substr(0, at);
  }
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(rest.substr(colon + 1));
    QR_RETURN_IF_ERROR(check_image_tag(ref.tag, std::string(field) + " tag"));
    rest = rest.substr(0, colon);
  }
  QR_RETURN_IF_ERROR(check_image_name(rest, field));
  ref.name = std::string(rest);
  return ref;
}

}  // namespace quorate::builder
