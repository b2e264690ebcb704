// The images of a docker-archive (`docker save`, `podman save --format docker-archive`): the one reader of
// manifest.json, shared by normalize, the image store and `quorate diff`.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/normalize/image_files.h"

namespace quorate::normalize {

struct DockerLayer {
  std::string name;            // as manifest.json names it
  std::filesystem::path file;  // the member's file
  std::string digest;          // what its bytes must hash to: the digest its name promises, else its diff_id
};

struct DockerImage {
  std::string config_name;
  std::string config_bytes;   // checked against the digest its name promises, when it promises one
  std::string config_digest;  // sha256 of config_bytes (docker's image id)
  nlohmann::json config;      // an object, with a rootfs.diff_ids string for each layer
  std::string repo_tag;       // the first RepoTags entry ("" when none), e.g. "registry/app:1.0"
  std::vector<DockerLayer> layers;
  nlohmann::json entry;  // the image's manifest.json entry as written
};

// Every image manifest.json lists, in order. bad_input naming the member for JSON that is not of the shape
// `docker save` writes, a config that does not match its name's digest, a diff_id count that differs from the
// layer count, a malformed digest, or a missing member. Layer bytes are not read: callers check them against
// `digest` as they copy or normalize them.
Result<std::vector<DockerImage>> read_docker_archive(const ImageFiles& files);

// The digest a docker-archive member's name promises (`…/blobs/sha256/<hex>`, `<hex>.json`), or "".
std::string digest_in_name(const std::string& name);

}  // namespace quorate::normalize
