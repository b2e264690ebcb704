// RebuildRequest: defaults, checks and the derived request id, in one place.
#include "quorate/wire/request.h"

#include "quorate/core/build_args.h"
#include "quorate/core/sha256.h"

namespace quorate::wire {
namespace {

Status check_field(const char* name, const std::string& value, bool required) {
  if (required && value.empty()) return Status::bad_input(std::string(name) + " is empty");
  if (value.size() > kMaxRequestFieldBytes) {
    return Status::bad_input(std::string(name) + " is longer than " + std::to_string(kMaxRequestFieldBytes) + " bytes");
  }
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::bad_input(std::string(name) + " holds a control character (byte " +
                               std::to_string(static_cast<unsigned char>(c)) + ")");
    }
  }
  return Status();
}

}  // namespace

Result<RebuildRequest> normalize_request(RebuildRequest r) {
  if (r.recipe_path.empty()) r.recipe_path = std::string(kDefaultRecipe);
  QR_RETURN_IF_ERROR(check_field("request_id", r.request_id, false));
  QR_RETURN_IF_ERROR(check_field("repo", r.repo, true));
  QR_RETURN_IF_ERROR(check_field("commit", r.commit, true));
  QR_RETURN_IF_ERROR(check_field("recipe_path", r.recipe_path, true));
  QR_RETURN_IF_ERROR(check_field("image_name", r.image_name, false));
  QR_RETURN_IF_ERROR(check_field("image_tag", r.image_tag, false));
  if (r.source_date_epoch && (*r.source_date_epoch < 0 || *r.source_date_epoch > kMaxSourceDateEpoch)) {
    return Status::bad_input("source_date_epoch " + std::to_string(*r.source_date_epoch) + " is outside 0.." +
                             std::to_string(kMaxSourceDateEpoch) + " (1970 to the end of year 9999)");
  }
  if (r.build_args.size() > kMaxBuildArgs) {
    return Status::bad_input("build_args: " + std::to_string(r.build_args.size()) + " given, at most " +
                             std::to_string(kMaxBuildArgs));
  }
  for (const auto& [name, value] : r.build_args) {
    if (name.empty()) return Status::bad_input("build_args: a name is empty");
    if (name.find('=') != std::string::npos) return Status::bad_input("build_args: name " + name + " holds '='");
    QR_RETURN_IF_ERROR(check_field("build_args name", name, true));
    QR_RETURN_IF_ERROR(check_field(("build_args " + name).c_str(), value, false));
  }
  QR_RETURN_IF_ERROR(check_build_args(r.build_args));  // has a canonical text (core/build_args.h)
  if (r.request_id.empty()) r.request_id = derive_request_id(r);
  return r;
}

std::string derive_request_id(const RebuildRequest& r) {
  std::string text;
  for (const std::string* f : {&r.repo, &r.commit, &r.recipe_path, &r.image_name}) {
    text += std::to_string(f->size()) + ":" + *f + ";";
  }
  text += r.source_date_epoch ? std::to_string(*r.source_date_epoch) : "commit-time";
  // The canonical text of the build args (core/build_args.h), length-prefixed; absent when there are none, so
  // requests without them keep their ids. A set without a canonical text (refused by normalize_request) falls
  // back to its names and values, length-prefixed.
  if (!r.build_args.empty()) {
    auto args = build_args_text(r.build_args);
    std::string canonical;
    if (args.ok()) {
      canonical = *args;
    } else {
      for (const auto& [name, value] : r.build_args) {
        canonical += std::to_string(name.size()) + ":" + name + "=" + std::to_string(value.size()) + ":" + value + ";";
      }
    }
    text += ";args;" + std::to_string(canonical.size()) + ":" + canonical;
  }
  if (!r.image_tag.empty()) text += ";tag;" + std::to_string(r.image_tag.size()) + ":" + r.image_tag;
  return "req-" + sha256_hex(text).substr(0, 16);
}

pb::BuildRequest to_wire(const RebuildRequest& r) {
  pb::BuildRequest m;
  m.set_request_id(r.request_id);
  m.set_repo(r.repo);
  m.set_commit(r.commit);
  m.set_recipe_path(r.recipe_path);
  m.set_image_name(r.image_name);
  m.set_image_tag(r.image_tag);
  if (r.source_date_epoch) m.set_source_date_epoch(*r.source_date_epoch);
  for (const auto& [name, value] : r.build_args) (*m.mutable_build_args())[name] = value;
  return m;
}

Result<RebuildRequest> request_from_wire(const pb::BuildRequest& m) {
  RebuildRequest r;
  r.request_id = m.request_id();
  r.repo = m.repo();
  r.commit = m.commit();
  r.recipe_path = m.recipe_path();
  r.image_name = m.image_name();
  r.image_tag = m.image_tag();
  if (m.has_source_date_epoch()) r.source_date_epoch = m.source_date_epoch();
  if (static_cast<size_t>(m.build_args_size()) > kMaxBuildArgs) {  // before copying an unbounded map
    return Status::bad_input("build_args: " + std::to_string(m.build_args_size()) + " given, at most " +
                             std::to_string(kMaxBuildArgs));
  }
  for (const auto& [name, value] : m.build_args()) r.build_args[name] = value;
  if (r.request_id.empty()) return Status::bad_input("request_id is empty");
  return normalize_request(std::move(r));
}

}  // namespace quorate::wire
