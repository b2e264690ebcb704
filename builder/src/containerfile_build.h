// Lowering a parsed Containerfile to an OCI image: stages over overlay root file systems, RUN in bubblewrap,
// COPY/ADD from the commit or an earlier stage, the final stage's layers and config written canonically.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "deadline.h"
#include "quorate/builder/build.h"
#include "quorate/builder/source.h"
#include "quorate/core/status.h"
#include "quorate/normalize/oci.h"

namespace quorate::builder {

struct ContainerfileInputs {
  const BuildOptions& options;
  const GitSource& source;
  std::string recipe_path;     // inside the commit
  std::filesystem::path work;  // this build's scratch directory
  int64_t epoch = 0;
  normalize::OciLayoutWriter& layout;
  const BuildDeadline& deadline;  // the whole build's
};

// What build() records of a Containerfile build.
struct ContainerfileImage {
  normalize::Descriptor manifest;
  std::string config_digest;
  std::string name, tag, os, architecture;
  std::vector<LayerInfo> layers;
  std::vector<std::pair<std::string, std::string>> base_images;  // every FROM / COPY --from image, by digest
  std::map<std::string, std::string> environment;                // what RUN added to every step's env
  bool ran = false;                                              // some RUN executed (in bubblewrap)
};

// Reads, parses and builds the Containerfile, writing blobs, the manifest and the index to `in.layout`.
// bad_input "FILE:LINE: …" for the Containerfile's faults and failing RUNs; not_found for images missing
// from the store; unsupported where this machine cannot (no root for overlay mounts) or this version does not
// (RUN under a non-root USER, --chown by name).
Result<ContainerfileImage> build_containerfile(const ContainerfileInputs& in);

}  // namespace quorate::builder
