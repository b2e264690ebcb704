// What the quorum engine counts: one signed claim "this subject key rebuilt to this digest", already verified.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace quorate::quorum {

// What is being rebuilt (DESIGN.md, Identities): votes are grouped by it. It names every input that
// legitimately changes the output, so that two honest requests never look like one node equivocating: the
// source, the commit, the recipe, the SOURCE_DATE_EPOCH the build used (the statement's sourceDateEpoch) and a
// Containerfile's build args (its externalParameters.buildArgs).
struct SubjectKey {
  std::string source_uri;
  std::string commit;
  std::string recipe_path;
  int64_t source_date_epoch = 0;  // always set from a statement; every statement carries one
  // The canonical text of the build args (core/build_args.h): "" when there are none (recipes, and
  // Containerfile builds given none), else e.g. {"FLAVOR":"spicy"}. Last, so {uri, commit, recipe, epoch}
  // still names the subject without build args.
  std::string build_args;

  auto operator<=>(const SubjectKey&) const = default;
  // "<source_uri>@<commit>:<recipe_path>@<epoch>", then " with build args <canonical text>" when there are
  // some; for messages.
  std::string to_string() const;
};

// One attestation whose DSSE signature was checked against a roster key. The engine still decides whether it
// counts (key validity at signed_at, revocation, max_age, equivocation, duplicates). A value type.
struct Vote {
  std::string node_id;  // the signer's node id as the statement names it (builder.id)
  std::string keyid;    // lowercase hex SHA-256 of the signing key's DER SubjectPublicKeyInfo
  SubjectKey subject;
  std::string image_digest;     // "sha256:…" of the manifest
  std::string config_digest;    // "sha256:…" of the image config (the content digest)
  int64_t signed_at = 0;        // the statement's time (runDetails finishedOn), Unix seconds
  std::string envelope_digest;  // identifies the attestation in reports and breaks ties
  std::string run_environment;  // where the build's run steps executed: "image", "host" or "none"

  auto operator<=>(const Vote&) const = default;
};

}  // namespace quorate::quorum
