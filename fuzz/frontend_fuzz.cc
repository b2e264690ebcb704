// libFuzzer target for the build front ends, which read text from a Git tree an attacker controls: Containerfile,
// .dockerignore, quorate.toml recipe and image reference parsing must give a value or a bad_input Status naming
// the file — never a crash, an exception, UB or a hang — and what they accept must keep their documented promises.
//
// Input: the first byte picks the parser (its value minus '0', modulo 5, so seeds start with a digit); the rest
// is the text. 0: Containerfile; 1: Containerfile with --build-arg BUILDER=NAME@sha256:HEX; 2: .dockerignore,
// matched against paths taken from its own lines; 3: quorate.toml recipe; 4: image reference.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/builder/containerfile.h"
#include "quorate/builder/recipe.h"
#include "quorate/builder/reference.h"
#include "quorate/core/sha256.h"

namespace {

namespace builder = quorate::builder;

void check(bool ok) {
  if (!ok) std::abort();
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// A refusal is bad_input and names the file first, as the headers promise.
void check_refusal(const quorate::Status& s, std::string_view file) {
  check(s.is_bad_input());
  check(starts_with(s.message(), file) && s.message().size() > file.size() && s.message()[file.size()] == ':');
}

// Up to `max` lines of `text`, blanks and a leading '!' trimmed, empty ones left out.
std::vector<std::string> lines_of(std::string_view text, size_t max) {
  std::vector<std::string> out;
  while (!text.empty() && out.size() < max) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t' || line.front() == '!')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
    if (!line.empty()) out.emplace_back(line);
  }
  return out;
}

const std::vector<std::string>& fixed_paths() {
  static const std::vector<std::string> paths = {"a", "a/b", "src/x.log", "docs/README.md", ".git/config", "build"};
  return paths;
}

// The variables lowering substitutes instruction words with, and what it substitutes.
void substitute_instructions(const builder::Containerfile& cf) {
  static const std::map<std::string, std::string> vars = {{"A", "x"}, {"HOME", "/root"}, {"EMPTY", ""}};
  for (const auto& stage : cf.stages) {
    for (const auto& in : stage.instructions) {
      if (in.exec_form || in.args.empty()) continue;
      if (in.kind == builder::Instruction::Kind::kEnv || in.kind == builder::Instruction::Kind::kLabel) {
        (void)builder::parse_pairs(in.args[0], vars, cf.escape);
      } else {
        (void)builder::substitute_words(in.args[0], vars, cf.escape);
      }
      if (auto from = in.flag("from")) (void)builder::substitute_word(*from, vars, cf.escape);
    }
  }
}

void fuzz_containerfile(std::string_view text, bool with_build_arg) {
  static const std::map<std::string, std::string> build_args = {
      {"BUILDER", "example.org/busybox@sha256:" + std::string(64, 'a')}};
  static const std::map<std::string, std::string> none;
  auto cf = builder::parse_containerfile(text, "Containerfile", with_build_arg ? build_args : none);
  if (!cf.ok()) return check_refusal(cf.status(), "Containerfile");
  check(!cf->stages.empty());
  check(cf->escape == '\\' || cf->escape == '`');
  int line = 0;
  std::set<std::string> names;
  for (size_t i = 0; i < cf->stages.size(); ++i) {
    const builder::Stage& s = cf->stages[i];
    check(s.line > line);  // stages and instructions in file order
    line = s.line;
    for (const auto& in : s.instructions) {
      check(in.line > line);
      line = in.line;
      check(in.exec_form || in.args.size() == 1 || in.healthcheck_none);
    }
    check(s.name.empty() || names.insert(s.name).second);
    if (s.base == builder::Stage::Base::kImage) {
      check(quorate::check_digest(s.digest).ok());  // a FROM image is pinned
      auto ref = builder::parse_image_reference(s.from, "FROM");
      check(ref.ok() && ref->digest == s.digest && ref->name == s.image_name);
    } else if (s.base == builder::Stage::Base::kStage) {
      check(s.base_stage < i);
    }
  }
  substitute_instructions(*cf);
}

void fuzz_dockerignore(std::string_view text) {
  auto ignore = builder::DockerIgnore::parse(text, ".dockerignore");
  if (!ignore.ok()) return check_refusal(ignore.status(), ".dockerignore");
  std::vector<std::string> paths = lines_of(text, 8);
  paths.insert(paths.end(), fixed_paths().begin(), fixed_paths().end());
  // Without `!` patterns, what excludes a directory excludes everything under it.
  const bool negations = text.find('!') != std::string_view::npos;
  for (const auto& p : paths) {
    bool excluded = ignore->excluded(p);
    check(excluded == ignore->excluded(p));
    if (excluded && !negations) check(ignore->excluded(p + "/child"));
  }
}

void fuzz_recipe(std::string_view text) {
  auto recipe = builder::parse_recipe(text, "quorate.toml");
  if (!recipe.ok()) return check_refusal(recipe.status(), "quorate.toml");
  check(builder::check_image_name(recipe->name, "name").ok());
  check(builder::check_image_tag(recipe->tag, "tag").ok());
  check(recipe->compression == "gzip" || recipe->compression == "zstd" || recipe->compression == "none");
  check(recipe->compression_level == -1 || (recipe->compression_level >= 1 && recipe->compression_level <= 19));
  if (recipe->base) check(quorate::check_digest(recipe->base->digest).ok());
  if (recipe->build_image) {
    check(quorate::check_digest(recipe->build_image->digest).ok());
    auto ref = builder::parse_image_reference(recipe->build_image->reference, "image");
    check(ref.ok() && ref->digest == recipe->build_image->digest);
  }
  check(!recipe->steps.empty());
  std::vector<std::string> patterns;
  for (const auto& step : recipe->steps) {
    check(!step.to.empty() && step.to.front() == '/');
    check(!step.mode || *step.mode <= 07777);
    if (step.kind == builder::Step::Kind::kCopy) {
      check(!step.patterns.empty());
      patterns.insert(patterns.end(), step.patterns.begin(), step.patterns.end());
    } else {
      check(!step.argv.empty() && !step.argv[0].empty());
    }
    (void)step.describe();
  }
  // Copy patterns are matched against the tree's paths (which the attacker also names); here, against each other.
  if (patterns.size() > 8) patterns.resize(8);
  for (const auto& p : patterns) {
    for (const auto& path : patterns) (void)builder::glob_match(p, path);
    for (const auto& path : fixed_paths()) (void)builder::glob_match(p, path);
  }
}

bool lower_hex(std::string_view s) { return s.find_first_not_of("0123456789abcdef") == std::string_view::npos; }

void fuzz_reference(std::string_view text) {
  (void)builder::is_url_source(text);
  (void)builder::is_containerfile_path(text);
  auto ref = builder::parse_image_reference(text, "image");
  if (!ref.ok()) {
    check(ref.status().is_bad_input());
    for (unsigned char c : ref.status().message()) check(c >= 0x20 && c != 0x7f);  // quoted: no raw control byte
    return;
  }
  check(ref->digest.empty() ||
        (ref->digest.size() == 71 && starts_with(ref->digest, "sha256:") && lower_hex(ref->digest.substr(7))));
  check(builder::check_image_name(ref->name, "name").ok());
  check(ref->tag.empty() || builder::check_image_tag(ref->tag, "tag").ok());
  // Accepted means it is exactly NAME[:TAG][@DIGEST].
  std::string again =
      ref->name + (ref->tag.empty() ? "" : ":" + ref->tag) + (ref->digest.empty() ? "" : "@" + ref->digest);
  check(again == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (static_cast<uint8_t>(data[0] - '0') % 5) {
    case 0:
      fuzz_containerfile(text, false);
      break;
    case 1:
      fuzz_containerfile(text, true);
      break;
    case 2:
      fuzz_dockerignore(text);
      break;
    case 3:
      fuzz_recipe(text);
      break;
    default:
      fuzz_reference(text);
      break;
  }
  return 0;
}
