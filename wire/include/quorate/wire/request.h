// A request to rebuild one commit: the domain form of the wire's BuildRequest, normalized in one place (the
// recipe default, the optional epoch, the checks) so that a client and a node agree on what was asked.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "quorate/core/status.h"
#include "quorate/core/time.h"
#include "quorate/wire/frame.h"

namespace quorate::wire {

inline constexpr std::string_view kDefaultRecipe = "quorate.toml";
inline constexpr size_t kMaxRequestFieldBytes = 4096;
inline constexpr size_t kMaxBuildArgs = 64;
// A later epoch cannot become an image's `created` (core's kLastRfc3339Second).
inline constexpr int64_t kMaxSourceDateEpoch = kLastRfc3339Second;

// A value type. After normalize_request() every field is checked and the defaults are applied.
struct RebuildRequest {
  std::string request_id;                         // chosen by the client; empty: derive_request_id() of the rest
  std::string repo;                               // local path or URL libgit2 can clone
  std::string commit;                             // commit id or revision
  std::string recipe_path;                        // empty: kDefaultRecipe
  std::string image_name;                         // optional override of the recipe's image name
  std::optional<int64_t> source_date_epoch;       // nullopt: the commit's committer time
  std::map<std::string, std::string> build_args;  // a Containerfile's --build-arg values (NAME -> VALUE)
  std::string image_tag;  // optional tag (a Containerfile's --tag); empty: the recipe's or "latest"

  bool operator==(const RebuildRequest&) const = default;
};

// Applies the defaults and checks the fields: bad_input naming the field when repo or commit is empty, a field
// is longer than kMaxRequestFieldBytes or holds a control character (NUL, newline, ...), or the epoch is
// negative or beyond kMaxSourceDateEpoch, or a build arg's name is empty, holds `=` or a control character,
// its value a control character, a name or value is not UTF-8, or there are more than kMaxBuildArgs. An empty request
// id becomes derive_request_id() of the result.
Result<RebuildRequest> normalize_request(RebuildRequest r);

// "req-" + 16 hex of SHA-256 over the normalized fields (request id aside), each delimited: two spellings of
// one build (no --recipe and --recipe quorate.toml) get one id, any other difference another. Build args are
// appended as their canonical text (core/build_args.h) only when there are some, and the image tag only when set, so
// the ids of requests without them did not change when they were added.
std::string derive_request_id(const RebuildRequest& normalized);

// Protobuf stays at the socket: these two are the only conversions.
pb::BuildRequest to_wire(const RebuildRequest& r);
Result<RebuildRequest> request_from_wire(const pb::BuildRequest& m);  // normalize_request() of its fields

}  // namespace quorate::wire
