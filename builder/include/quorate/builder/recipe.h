// The build recipe (quorate.toml): what to build from a commit, step by step (every key in docs/recipe.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::builder {

// One step of a recipe; each step becomes exactly one layer.
struct Step {
  enum class Kind { kCopy, kRun };
  Kind kind = Kind::kCopy;
  int line = 0;  // where the step's table starts in the recipe, for messages
  // copy: glob patterns over the commit's tree, relative to `from` ("*", "?", "[..]" within a path segment,
  // "**" for any number of segments). A matched directory brings everything below it.
  std::vector<std::string> patterns;
  std::string from;  // a directory of the tree ("" = its root)
  // run: the command (a string is run as ["/bin/sh", "-c", string]), extra env, directory inside the tree.
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string workdir;
  // Both: where the copied files (or the run step's output directory) land in the image; absolute.
  std::string to = "/";
  std::optional<uint32_t> mode;  // regular files get exactly these permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string describe() const;  // the history entry's created_by
};

// The builder image run steps execute in ([build] image = "NAME@sha256:HEX"): pinned by digest, never a tag.
struct BuilderImage {
  std::string reference;  // as written
  std::string name;       // informational
  std::string digest;     // "sha256:…" of its manifest: the pin
};

struct BaseImage {
  std::string name;         // informational: what the base is called
  std::string digest;       // "sha256:…" of its manifest: the pin
  std::string layout;       // OCI layout dir on the build machine (relative: against BuildOptions::base_dir)
  bool from_store = false;  // `image = "NAME@sha256:HEX"`: looked up in the image store instead of a layout
};

// The image config part of the recipe; unset optionals inherit from the base image.
struct ImageConfig {
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::map<std::string, std::string> env;
  std::optional<std::string> workdir;
  std::optional<std::string> user;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "8080/tcp"; a bare "8080" means tcp
  std::optional<std::string> stop_signal;
};

struct Recipe {
  std::string path;  // the recipe's path inside the commit, as given
  std::string name;  // image name, e.g. "example.org/hello"
  std::string tag = "latest";
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;
  std::string source;  // label org.opencontainers.image.source; empty = the repository as given
  std::string compression = "gzip";
  int compression_level = -1;
  std::optional<BaseImage> base;
  std::map<std::string, std::string> build_env;  // env of every run step
  std::string build_path;                        // PATH of run steps; empty = the builder's default
  std::vector<std::string> tools;                // programs whose `--version` is recorded in the result
  std::optional<BuilderImage> build_image;       // run steps' root file system; none = the host's toolchain
  std::vector<Step> steps;
  ImageConfig config;
};

// Parses recipe text. `file` names the recipe in messages. bad_input "file:line: ..." naming the key for a
// TOML syntax error, an unknown key, a missing required key, a wrong type or a meaningless value.
Result<Recipe> parse_recipe(std::string_view text, const std::string& file);

// Glob match of one pattern against a relative path (segments split at '/'; "**" spans segments).
bool glob_match(std::string_view pattern, std::string_view path);

}  // namespace quorate::builder
