// Canonical tar header encoding (POSIX pax interchange format, ustar headers).
#include "quorate/normalize/tar_header.h"

#include <cstring>
#include <string_view>

#include "quorate/core/encoding.h"

namespace quorate::normalize::detail {
namespace {

constexpr uint64_t kMaxOctal7 = 07777777;          // uid, gid, mode, devmajor, devminor
constexpr uint64_t kMaxOctal11 = 077777777777ull;  // size, mtime

char type_flag(EntryType t) {
  switch (t) {
    case EntryType::kFile:
      return '0';
    case EntryType::kHardlink:
      return '1';
    case EntryType::kSymlink:
      return '2';
    case EntryType::kCharDevice:
      return '3';
    case EntryType::kBlockDevice:
      return '4';
    case EntryType::kDirectory:
      return '5';
    case EntryType::kFifo:
      return '6';
  }
  return '0';
}

// `width - 1` zero-padded octal digits and a NUL.
void put_octal(char* field, size_t width, uint64_t value) {
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

void put_string(char* field, size_t width, std::string_view s) {
  if (!s.empty()) std::memcpy(field, s.data(), std::min(width, s.size()));  // an empty view's data() may be null
}

// One "<len> <key>=<value>\n" record; <len> counts the whole record including its own digits.
void add_record(std::string& out, std::string_view key, std::string_view value) {
  size_t body = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  out += std::to_string(len);
  out += ' ';
  out += key;
  out += '=';
  out += value;
  out += '\n';
}

std::string basename_of(std::string_view path) {
  auto slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// A ustar header block with the given fields; the checksum is computed last.
std::string ustar_block(std::string_view name, char type, uint32_t mode, uint64_t uid, uint64_t gid, uint64_t size,
                        uint64_t mtime, std::string_view link, std::string_view uname, std::string_view gname,
                        uint32_t devmajor, uint32_t devminor) {
  std::string block(kBlockSize, '\0');
  char* h = block.data();
  put_string(h + 0, 100, name);
  put_octal(h + 100, 8, mode);
  put_octal(h + 108, 8, uid);
  put_octal(h + 116, 8, gid);
  put_octal(h + 124, 12, size);
  put_octal(h + 136, 12, mtime);
  h[156] = type;
  put_string(h + 157, 100, link);
  std::memcpy(h + 257,
              "ustar\0"
              "00",
              8);
  put_string(h + 265, 32, uname);
  put_string(h + 297, 32, gname);
  put_octal(h + 329, 8, devmajor);
  put_octal(h + 337, 8, devminor);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlockSize; ++i) sum += static_cast<unsigned char>(h[i]);
  put_octal(h + 148, 7, sum);  // six digits, NUL, and the space left from the blank fill
  return block;
}

}  // namespace

size_t tar_padding(uint64_t size) { return static_cast<size_t>((kBlockSize - size % kBlockSize) % kBlockSize); }

std::string tar_header(const Entry& e) {
  std::string name = e.path;
  if (e.type == EntryType::kDirectory) name += '/';
  const bool has_link = e.type == EntryType::kSymlink || e.type == EntryType::kHardlink;
  const uint64_t size = e.type == EntryType::kFile ? e.size : 0;

  std::string pax;
  const bool binary = !is_utf8(name) || (has_link && !is_utf8(e.link_target)) || !is_utf8(e.uname) || !is_utf8(e.gname);
  const bool long_name = name.size() > 100;
  const bool long_link = has_link && e.link_target.size() > 100;
  if (binary && (long_name || long_link || e.uname.size() > 31 || e.gname.size() > 31)) {
    add_record(pax, "hdrcharset", "BINARY");
  }
  if (long_name) add_record(pax, "path", name);
  if (long_link) add_record(pax, "linkpath", e.link_target);
  if (size > kMaxOctal11) add_record(pax, "size", std::to_string(size));
  if (e.uid > kMaxOctal7) add_record(pax, "uid", std::to_string(e.uid));
  if (e.gid > kMaxOctal7) add_record(pax, "gid", std::to_string(e.gid));
  if (e.uname.size() > 31) add_record(pax, "uname", e.uname);
  if (e.gname.size() > 31) add_record(pax, "gname", e.gname);
  const bool mtime_fits = e.mtime >= 0 && static_cast<uint64_t>(e.mtime) <= kMaxOctal11;
  if (!mtime_fits) add_record(pax, "mtime", std::to_string(e.mtime));
  if (e.devmajor > kMaxOctal7) add_record(pax, "SCHILY.devmajor", std::to_string(e.devmajor));
  if (e.devminor > kMaxOctal7) add_record(pax, "SCHILY.devminor", std::to_string(e.devminor));
  for (const auto& [key, value] : e.xattrs) add_record(pax, "SCHILY.xattr." + key, value);

  std::string out;
  if (!pax.empty()) {
    // A fixed name that depends only on the entry, never on a process id.
    std::string pax_name = "PaxHeaders/" + basename_of(e.path);
    if (pax_name.size() > 100) pax_name.resize(100);
    out += ustar_block(pax_name, 'x', 0644, 0, 0, pax.size(), 0, {}, {}, {}, 0, 0);
    out += pax;
    out.append(tar_padding(pax.size()), '\0');
  }
  out += ustar_block(long_name ? std::string_view(name).substr(0, 100) : std::string_view(name), type_flag(e.type),
                     e.mode & 07777, std::min<uint64_t>(e.uid, kMaxOctal7), std::min<uint64_t>(e.gid, kMaxOctal7),
                     size > kMaxOctal11 ? 0 : size, mtime_fits ? static_cast<uint64_t>(e.mtime) : 0,
                     has_link ? std::string_view(e.link_target).substr(0, 100) : std::string_view(),
                     e.uname.size() > 31 ? std::string_view() : std::string_view(e.uname),
                     e.gname.size() > 31 ? std::string_view() : std::string_view(e.gname),
                     std::min<uint32_t>(e.devmajor, kMaxOctal7), std::min<uint32_t>(e.devminor, kMaxOctal7));
  return out;
}

}  // namespace quorate::normalize::detail
