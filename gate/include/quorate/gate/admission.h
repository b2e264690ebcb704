// AdmissionReview (admission.k8s.io/v1) documents: the images a workload names, and the response the API
// server expects.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::gate {

// The largest request body the gate reads (docs/gate.md); a larger one is answered 400. The API server sends
// at most 3 MiB objects by default, but a Pod or workload with its images is a few KiB.
inline constexpr size_t kMaxBodyBytes = 1 << 20;

// One image reference and where the object names it ("spec.template.spec.containers[1] (web)").
struct ImageRef {
  std::string where;
  std::string image;
};

// What the gate needs from a review request.
struct Review {
  std::string uid;
  std::string kind;              // request.kind.kind, e.g. "Pod", "Deployment"
  std::string namespace_;        // request.namespace ("" for cluster-scoped objects)
  std::string name;              // request.name, else object.metadata.name / generateName
  std::string operation;         // CREATE, UPDATE, ...
  std::vector<ImageRef> images;  // in document order
};

// Parses an AdmissionReview of apiVersion admission.k8s.io/v1 with a request. Images come from the pod spec
// of a Pod (containers, initContainers, ephemeralContainers) and from the pod template of a Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job (spec.template.spec) and CronJob
// (spec.jobTemplate.spec.template.spec); other kinds, and requests without an object (DELETE), name none.
// bad_input saying what is wrong for anything else (not JSON, another apiVersion or kind, no uid, a
// container without a string image, ...).
Result<Review> parse_review(std::string_view body);

// The digest ("sha256:<64 hex>") of a reference pinned as NAME@sha256:HEX; bad_input naming the reference
// when it is not pinned that way (a tag only, another algorithm, a malformed digest).
Result<std::string> pinned_digest(std::string_view image);

// An AdmissionReview response: the request's uid and the verdict; on denial status.code 403 and `message`.
std::string response_json(const std::string& uid, bool allowed, const std::string& message);

}  // namespace quorate::gate
