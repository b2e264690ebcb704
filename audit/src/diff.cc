// Layer and image comparison, and its renderings.
#include "quorate/audit/diff.h"

#include <map>
#include <sstream>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "quorate/normalize/inspect.h"

namespace quorate::audit {
namespace {

using normalize::EntryType;
using normalize::LayerEntry;

const std::set<std::string> kKnownFields = {"content", "created", "link", "mode", "mtime", "owner", "xattrs"};

const char* type_name(EntryType t) {
  switch (t) {
    case EntryType::kFile: return "file";
    case EntryType::kDirectory: return "directory";
    case EntryType::kSymlink: return "symlink";
    case EntryType::kHardlink: return "hardlink";
    case EntryType::kCharDevice: return "char device";
    case EntryType::kBlockDevice: return "block device";
    case EntryType::kFifo: return "fifo";
  }
  return "unknown";
}

std::string octal(uint32_t mode) {
  char buf[16];
  snprintf(buf, sizeof buf, "%04o", mode);
  return buf;
}

std::string xattr_text(const std::map<std::string, std::string>& xattrs) {
  std::string out;
  for (const auto& [k, v] : xattrs) {
    if (!out.empty()) out += ", ";
    out += k + "=" + std::to_string(v.size()) + " bytes";
  }
  return out.empty() ? "(none)" : out;
}

Result<std::map<std::string, LayerEntry>> index_layer(const std::filesystem::path& layer, const DiffOptions& options) {
  std::map<std::string, LayerEntry> entries;
  QR_RETURN_IF_ERROR(normalize::read_layer_entries(
      layer,
      [&](LayerEntry&& e) {
        std::string path = e.entry.path;
        if (e.entry.type == EntryType::kHardlink) {
          // A hardlink is the file it links to: which path of a group carries the content is not a
          // difference a user cares about.
          auto target = entries.find(e.entry.link_target);
          if (target == entries.end()) {
            return Status::bad_input(layer.string() + ": hardlink \"" + path + "\" points to \"" +
                                     e.entry.link_target + "\", which is not in the layer before it");
          }
          LayerEntry resolved = target->second;
          resolved.entry.path = path;
          e = std::move(resolved);
        }
        entries.insert_or_assign(std::move(path), std::move(e));  // the last entry for a path wins, as in tar
        return Status();
      },
      options.max_expanded_bytes));
  return entries;
}

void compare(const LayerEntry& a, const LayerEntry& b, const std::set<std::string>& ignore,
             std::vector<FieldDiff>& out) {
  auto add = [&](const char* field, const char* group, std::string va, std::string vb) {
    if (va != vb && !ignore.count(group)) out.push_back({field, std::move(va), std::move(vb)});
  };
  const auto& x = a.entry;
  const auto& y = b.entry;
  add("type", "type", type_name(x.type), type_name(y.type));
  add("size", "content", std::to_string(x.size), std::to_string(y.size));
  add("content", "content", a.content_digest, b.content_digest);
  add("mode", "mode", octal(x.mode), octal(y.mode));
  add("owner", "owner", std::to_string(x.uid) + ":" + std::to_string(x.gid) + " (" + x.uname + ":" + x.gname + ")",
      std::to_string(y.uid) + ":" + std::to_string(y.gid) + " (" + y.uname + ":" + y.gname + ")");
  add("mtime", "mtime", format_rfc3339(x.mtime), format_rfc3339(y.mtime));
  add("link", "link", x.link_target, y.link_target);
  add("device", "type", std::to_string(x.devmajor) + "," + std::to_string(x.devminor),
      std::to_string(y.devmajor) + "," + std::to_string(y.devminor));
  if (x.xattrs != y.xattrs && !ignore.count("xattrs")) out.push_back({"xattrs", xattr_text(x.xattrs), xattr_text(y.xattrs)});
}

const char* kind_name(FileChange::Kind k) {
  switch (k) {
    case FileChange::Kind::kAdded: return "added";
    case FileChange::Kind::kRemoved: return "removed";
    case FileChange::Kind::kChanged: return "changed";
  }
  return "changed";
}

nlohmann::json fields_json(const std::vector<FieldDiff>& fields) {
  auto out = nlohmann::json::array();
  for (const auto& f : fields) out.push_back({{"field", f.field}, {"a", f.a}, {"b", f.b}});
  return out;
}

// The differences of two entry maps, sorted by path.
std::vector<FileChange> diff_maps(const std::map<std::string, LayerEntry>& left,
                                  const std::map<std::string, LayerEntry>& right, const DiffOptions& options) {
  std::vector<FileChange> changes;
  auto l = left.begin();
  auto r = right.begin();
  while (l != left.end() || r != right.end()) {
    if (r == right.end() || (l != left.end() && l->first < r->first)) {
      changes.push_back({l->first, FileChange::Kind::kRemoved, {}});
      ++l;
    } else if (l == left.end() || r->first < l->first) {
      changes.push_back({r->first, FileChange::Kind::kAdded, {}});
      ++r;
    } else {
      FileChange change{l->first, FileChange::Kind::kChanged, {}};
      compare(l->second, r->second, options.ignore, change.fields);
      if (!change.fields.empty()) changes.push_back(std::move(change));
      ++l;
      ++r;
    }
  }
  return changes;
}

// One OCI image layout: its manifest and config, and where its blobs are.
struct Layout {
  std::filesystem::path dir;
  nlohmann::json manifest;
  nlohmann::json config;

  std::filesystem::path blob(const std::string& digest) const { return dir / "blobs" / "sha256" / digest_hex(digest); }

  Result<nlohmann::json> read_json(const std::string& digest) const {
    QR_RETURN_IF_ERROR(check_digest(digest));
    auto bytes = QR_TRY(read_file(blob(digest)));
    if (sha256_digest(bytes) != digest) return Status::bad_input(blob(digest).string() + " does not match its digest");
    auto j = nlohmann::json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::bad_input(blob(digest).string() + " is not a JSON object");
    return j;
  }

  static Result<Layout> open(const std::filesystem::path& dir) {
    Layout l;
    l.dir = dir;
    auto index_bytes = read_file(dir / "index.json");
    if (!index_bytes.ok()) {
      if (index_bytes.status().is_not_found()) {
        return Status::not_found(dir.string() + " is not an OCI image layout (no index.json); run quorate normalize "
                                 "on archives first");
      }
      return index_bytes.status();
    }
    auto index = nlohmann::json::parse(*index_bytes, nullptr, false);
    if (index.is_discarded() || !index.contains("manifests") || !index["manifests"].is_array() ||
        index["manifests"].empty() || !index["manifests"][0].contains("digest") ||
        !index["manifests"][0]["digest"].is_string()) {
      return Status::bad_input((dir / "index.json").string() + " does not list a manifest");
    }
    l.manifest = QR_TRY(l.read_json(index["manifests"][0]["digest"].get<std::string>()));
    if (!l.manifest.contains("config") || !l.manifest["config"].contains("digest") ||
        !l.manifest["config"]["digest"].is_string() || !l.manifest.contains("layers") || !l.manifest["layers"].is_array()) {
      return Status::bad_input(dir.string() + ": the manifest has no config or layers");
    }
    l.config = QR_TRY(l.read_json(l.manifest["config"]["digest"].get<std::string>()));
    return l;
  }

  std::string layer_digest(size_t i) const {
    const auto& layers = manifest["layers"];
    if (i >= layers.size() || !layers[i].contains("digest") || !layers[i]["digest"].is_string()) return "";
    return layers[i]["digest"].get<std::string>();
  }
};

bool is_time_field(const std::string& pointer) {
  return pointer == "/created" || (pointer.rfind("/history/", 0) == 0 && pointer.size() > 8 &&
                                   pointer.substr(pointer.size() - 8) == "/created");
}

void diff_json(const nlohmann::json& a, const nlohmann::json& b, const std::string& prefix, bool skip_times,
               std::vector<FieldDiff>& out) {
  auto fa = a.flatten();
  auto fb = b.flatten();
  std::set<std::string> keys;
  for (const auto& [k, v] : fa.items()) keys.insert(k);
  for (const auto& [k, v] : fb.items()) keys.insert(k);
  for (const auto& k : keys) {
    if (skip_times && is_time_field(k)) continue;
    std::string va = fa.contains(k) ? fa[k].dump() : "(absent)";
    std::string vb = fb.contains(k) ? fb[k].dump() : "(absent)";
    if (va != vb) out.push_back({prefix + k, va, vb});
  }
}

}  // namespace

Result<ImageDiff> diff_images(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options) {
  QR_RETURN_IF_ERROR(check_ignore(options.ignore));
  auto left = QR_TRY(Layout::open(a));
  auto right = QR_TRY(Layout::open(b));
  ImageDiff diff;
  // Layer descriptors are explained layer by layer below; the config descriptor by the config's fields.
  nlohmann::json ma = left.manifest, mb = right.manifest;
  for (auto* m : {&ma, &mb}) {
    m->erase("layers");
    m->erase("config");
  }
  diff_json(ma, mb, "", false, diff.manifest);
  diff_json(left.config, right.config, "", options.ignore.count("created") > 0, diff.config);
  // rootfs.diff_ids repeat what the layer comparison says file by file.
  std::erase_if(diff.config, [](const FieldDiff& f) { return f.field.rfind("/rootfs/diff_ids/", 0) == 0; });

  size_t count = std::max(left.manifest["layers"].size(), right.manifest["layers"].size());
  for (size_t i = 0; i < count; ++i) {
    std::string da = left.layer_digest(i), db = right.layer_digest(i);
    if (!da.empty() && da == db) continue;
    std::map<std::string, LayerEntry> ea, eb;
    if (!da.empty()) ea = QR_TRY(index_layer(left.blob(da), options));
    if (!db.empty()) eb = QR_TRY(index_layer(right.blob(db), options));
    LayerDiff layer{i, da, db, diff_maps(ea, eb, options)};
    if (!layer.changes.empty() || da.empty() || db.empty()) diff.layers.push_back(std::move(layer));
  }
  return diff;
}

Status check_ignore(const std::set<std::string>& ignore) {
  for (const auto& name : ignore) {
    if (!kKnownFields.count(name)) {
      return Status::usage("cannot ignore \"" + name + "\": known fields are content, created, link, mode, mtime, "
                           "owner, xattrs");
    }
  }
  return Status();
}

Result<LayerDiff> diff_layers(const std::filesystem::path& a, const std::filesystem::path& b,
                              const DiffOptions& options) {
  QR_RETURN_IF_ERROR(check_ignore(options.ignore));
  auto left = QR_TRY(index_layer(a, options));
  auto right = QR_TRY(index_layer(b, options));
  LayerDiff diff;
  diff.changes = diff_maps(left, right, options);
  return diff;
}

nlohmann::json to_json(const ImageDiff& diff) {
  nlohmann::json out;
  out["identical"] = diff.identical();
  out["manifest"] = fields_json(diff.manifest);
  out["config"] = fields_json(diff.config);
  out["layers"] = nlohmann::json::array();
  for (const auto& layer : diff.layers) {
    nlohmann::json l{{"index", layer.index}, {"a_digest", layer.a_digest}, {"b_digest", layer.b_digest}};
    l["changes"] = nlohmann::json::array();
    for (const auto& c : layer.changes) {
      l["changes"].push_back({{"path", c.path}, {"kind", kind_name(c.kind)}, {"fields", fields_json(c.fields)}});
    }
    out["layers"].push_back(std::move(l));
  }
  return out;
}

std::string to_text(const ImageDiff& diff) {
  std::ostringstream out;
  if (diff.identical()) {
    out << "images are identical\n";
    return out.str();
  }
  for (const auto& f : diff.manifest) out << "manifest " << f.field << ": " << f.a << " -> " << f.b << "\n";
  for (const auto& f : diff.config) out << "config " << f.field << ": " << f.a << " -> " << f.b << "\n";
  for (const auto& layer : diff.layers) {
    out << "layer " << layer.index << " (" << (layer.a_digest.empty() ? "absent" : layer.a_digest) << " -> "
        << (layer.b_digest.empty() ? "absent" : layer.b_digest) << ")\n";
    for (const auto& c : layer.changes) {
      out << "  " << kind_name(c.kind) << " " << c.path << "\n";
      for (const auto& f : c.fields) out << "      " << f.field << ": " << f.a << " -> " << f.b << "\n";
    }
  }
  return out.str();
}

}  // namespace quorate::audit
