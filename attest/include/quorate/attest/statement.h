// The in-toto Statement v1 with a SLSA Provenance v1 predicate that a node signs: built from the builder's build
// result (docs/build-result.md), parsed back into the fields verifiers and the quorum need. See docs/attestation.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::attest {

inline constexpr std::string_view kStatementType = "https://in-toto.io/Statement/v1";
inline constexpr std::string_view kProvenanceType = "https://slsa.dev/provenance/v1";
inline constexpr std::string_view kBuildType = "https://quorate.dev/build/v1";
// runDetails.builder.id is a URI naming the node: this prefix and the node id unless configured
// (`builder_id` in a node's config, `quorate attest --builder-id`). The node id the roster knows is
// builder.version[kNodeIdVersionKey].
inline constexpr std::string_view kBuilderUriPrefix = "https://quorate.dev/node/";
inline constexpr std::string_view kNodeIdVersionKey = "quorate.node_id";

struct BaseImage {
  std::string name;
  std::string digest;  // "sha256:…"
  auto operator<=>(const BaseImage&) const = default;
};

// What a verified statement says. A value type. Digests are "sha256:<64 hex>"; times are Unix seconds.
struct Statement {
  std::string subject_name;  // the image name
  std::string image_digest;  // the manifest digest: the strict vote
  std::string source_uri;    // the subject key: (source_uri, commit, recipe_path)
  std::string commit;        // 40 hex
  std::string recipe_path;
  // externalParameters.buildArgs: a Containerfile build's --build-arg values (empty for recipes). Part of the
  // subject key, as their canonical text (core/build_args.h).
  std::map<std::string, std::string> build_args;
  std::string config_digest;  // the content digest
  std::vector<std::string> diff_ids;
  std::vector<BaseImage> base_images;
  std::optional<BaseImage> builder_image;  // the image run steps executed in (annotation role = "builder")
  // Where run steps executed: "image", "host" or "none" (internalParameters.runEnvironment; statements without
  // it read as "image" when they name a builder image, else "host").
  std::string run_environment;
  std::string compressor;
  int64_t canonical_form = 0;
  int64_t source_date_epoch = 0;
  std::string builder_id;       // the node id (builder.version["quorate.node_id"]; older statements: builder.id)
  std::string builder_uri;      // runDetails.builder.id
  std::string builder_version;  // the quorate version that built
  int64_t started_on = 0;       // runDetails.metadata: never part of what is compared
  int64_t finished_on = 0;      // the signing time verifiers judge key validity at
};

// Whether `s` is a run environment a statement may name: "image", "host" or "none".
inline bool is_run_environment(std::string_view s) { return s == "image" || s == "host" || s == "none"; }

// Builds the statement for the build result JSON `build_result` signed by node `node_id`, as canonical JSON
// (sorted keys, no whitespace). bad_input naming the field when a required field of the build result is missing
// or malformed (digests must be sha256:<64 hex>, commit 40 hex, times RFC 3339); bad_input when node_id is empty.
// `builder_uri` is runDetails.builder.id; empty means default_builder_uri(node_id). bad_input when it is not a URI.
Result<std::string> statement_from_build_result(std::string_view build_result, std::string_view node_id,
                                                std::string_view builder_uri = {});

// kBuilderUriPrefix + the node id (percent-encoded).
std::string default_builder_uri(std::string_view node_id);
// Whether `s` has the form of an absolute URI (RFC 3986 scheme ":" …, no spaces, controls or characters a
// URI never holds unencoded).
bool is_uri(std::string_view s);
// A repository as given to the builder made a resolvedDependencies URI: git+URL for a URL, git+file:///abs
// for an absolute path (percent-encoded), git+file:rel for a relative one (the builder passes absolute paths).
std::string source_dependency_uri(std::string_view repo);

// Parses a statement strictly (duplicate keys rejected). bad_input naming the field when it is malformed:
// a subject digest that is not 64 lowercase hex, a missing field. verification when _type, predicateType or
// buildType is not ours (a well-formed statement that is not a quorate provenance).
Result<Statement> parse_statement(std::string_view json);

}  // namespace quorate::attest
