// AdmissionReview parsing and responses.
#include "quorate/gate/admission.h"
#include "quorate/core/json.h"

#include <nlohmann/json.hpp>

#include <map>

namespace quorate::gate {
namespace {

using nlohmann::json;

// Where each workload kind keeps its pod spec, as a path of object keys.
const std::map<std::string, std::vector<std::string>>& pod_spec_paths() {
  static const std::map<std::string, std::vector<std::string>> paths = {
      {"Pod", {"spec"}},
      {"Deployment", {"spec", "template", "spec"}},
      {"StatefulSet", {"spec", "template", "spec"}},
      {"DaemonSet", {"spec", "template", "spec"}},
      {"ReplicaSet", {"spec", "template", "spec"}},
      {"ReplicationController", {"spec", "template", "spec"}},
      {"Job", {"spec", "template", "spec"}},
      {"CronJob", {"spec", "jobTemplate", "spec", "template", "spec"}},
  };
  return paths;
}

std::string string_field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status images_of(const json& pod_spec, const std::string& prefix, std::vector<ImageRef>& out) {
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    auto it = pod_spec.find(list);
    if (it == pod_spec.end() || it->is_null()) continue;
    const std::string where = prefix + "." + list;
    if (!it->is_array()) return Status::bad_input(where + " is not an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& c = (*it)[i];
      const std::string at = where + "[" + std::to_string(i) + "]";
      if (!c.is_object()) return Status::bad_input(at + " is not an object");
      auto image = c.find("image");
      if (image == c.end() || !image->is_string() || image->get<std::string>().empty()) {
        return Status::bad_input(at + " has no image");
      }
      std::string name = string_field(c, "name");
      out.push_back({at + (name.empty() ? "" : " (" + name + ")"), image->get<std::string>()});
    }
  }
  return Status();
}

}  // namespace

Result<Review> parse_review(std::string_view body) {
  if (body.empty()) return Status::bad_input("empty body: expected an AdmissionReview");
  QR_RETURN_IF_ERROR(check_json_depth(body, "body"));
  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded()) return Status::bad_input("body is not JSON");
  if (!doc.is_object()) return Status::bad_input("body is not a JSON object");
  if (string_field(doc, "kind") != "AdmissionReview") return Status::bad_input("kind is not AdmissionReview");
  std::string api = string_field(doc, "apiVersion");
  if (api != "admission.k8s.io/v1") {
    return Status::bad_input("apiVersion '" + api + "' is not admission.k8s.io/v1");
  }
  auto req = doc.find("request");
  if (req == doc.end() || !req->is_object()) return Status::bad_input("no request object");
  Review r;
  r.uid = string_field(*req, "uid");
  if (r.uid.empty()) return Status::bad_input("request.uid is missing");
  auto kind = req->find("kind");
  if (kind != req->end() && kind->is_object()) r.kind = string_field(*kind, "kind");
  r.namespace_ = string_field(*req, "namespace");
  r.name = string_field(*req, "name");
  r.operation = string_field(*req, "operation");
  auto object = req->find("object");
  if (object == req->end() || object->is_null()) return r;  // DELETE, CONNECT: nothing runs
  if (!object->is_object()) return Status::bad_input("request.object is not an object");
  if (r.kind.empty()) r.kind = string_field(*object, "kind");
  if (r.name.empty()) {
    auto meta = object->find("metadata");
    if (meta != object->end() && meta->is_object()) {
      r.name = string_field(*meta, "name");
      if (r.name.empty()) r.name = string_field(*meta, "generateName");
    }
  }
  auto path = pod_spec_paths().find(r.kind);
  if (path == pod_spec_paths().end()) return r;  // not a workload: no images
  const json* at = &*object;
  std::string where;
  for (const auto& key : path->second) {
    auto next = at->find(key);
    where += (where.empty() ? "" : ".") + key;
    if (next == at->end() || !next->is_object()) return Status::bad_input(r.kind + " has no object at " + where);
    at = &*next;
  }
  QR_RETURN_IF_ERROR(images_of(*at, where, r.images));
  return r;
}

Result<std::string> pinned_digest(std::string_view image) {
  auto at = image.rfind('@');
  const std::string ref(image);
  if (at == std::string_view::npos || at == 0)
    return Status::bad_input(ref + " is not pinned by digest (NAME@sha256:HEX)");
  std::string_view digest = image.substr(at + 1);
  if (digest.substr(0, 7) != "sha256:" || digest.size() != 7 + 64) {
    return Status::bad_input(ref + " is not pinned by a sha256 digest (NAME@sha256:HEX)");
  }
  for (char c : digest.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Status::bad_input(ref + ": the digest is not 64 lowercase hex digits");
    }
  }
  return std::string(digest);
}

std::string response_json(const std::string& uid, bool allowed, const std::string& message) {
  json response = {{"uid", uid}, {"allowed", allowed}};
  if (!allowed) response["status"] = {{"code", 403}, {"message", message}};
  json review = {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}};
  return review.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace quorate::gate
