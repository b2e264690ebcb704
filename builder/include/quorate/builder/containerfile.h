// Containerfiles (Dockerfiles): text parsed into stages of instructions, with every refusal naming FILE:LINE.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::builder {

// True when a recipe path names a Containerfile: its file name is `Containerfile` or `Dockerfile`, or ends in
// `.Containerfile` / `.Dockerfile`. Everything else is a quorate.toml recipe.
bool is_containerfile_path(std::string_view path);

// One flag of an instruction, `--name=value` (`--name` alone has an empty value). The value is substituted
// when the instruction is lowered.
struct InstructionFlag {
  std::string name;
  std::string value;
};

struct Instruction {
  enum class Kind {
    kRun,
    kCopy,
    kAdd,
    kEnv,
    kArg,
    kWorkdir,
    kUser,
    kShell,
    kEntrypoint,
    kCmd,
    kLabel,
    kExpose,
    kStopSignal,
    kVolume,
    kHealthcheck,
  };
  Kind kind = Kind::kRun;
  int line = 0;                        // the line the instruction starts on (1-based)
  std::string text;                    // the instruction as written, continuations joined: history's created_by
  std::vector<InstructionFlag> flags;  // checked against the instruction's known flags
  // Exec (JSON) form: the array's strings. Shell form: `args` holds one string, the rest of the line after
  // the flags (for HEALTHCHECK: after `CMD`), unsubstituted.
  bool exec_form = false;
  std::vector<std::string> args;
  bool healthcheck_none = false;  // HEALTHCHECK NONE

  // The value of flag `name`, if given.
  std::optional<std::string> flag(std::string_view name) const;
};

// A global ARG (before the first FROM): available to FROM lines, and to a stage that declares it again.
struct GlobalArg {
  std::string name;
  std::optional<std::string> value;  // the build arg when given, else the default (substituted), else none
};

struct Stage {
  enum class Base { kScratch, kImage, kStage };
  int line = 0;      // the FROM line
  std::string from;  // the FROM argument after substitution, as written
  std::string name;  // `AS name`, lowercased; empty when unnamed
  Base base = Base::kScratch;
  std::string image_name;  // kImage: the repository name (informational)
  std::string digest;      // kImage: "sha256:<64 hex>", the pin
  size_t base_stage = 0;   // kStage: the index of an earlier stage
  std::vector<Instruction> instructions;
};

struct Containerfile {
  std::string file;    // as given, for messages
  char escape = '\\';  // the escape directive
  std::string syntax;  // the syntax directive, as written (recorded; no frontend image is ever fetched)
  std::vector<GlobalArg> global_args;
  std::vector<Stage> stages;                      // at least one
  std::map<std::string, std::string> build_args;  // as given; every one is declared by some ARG
};

// Bounds on what substitution makes. A Containerfile comes from the commit, so from whoever wrote it: 40 lines
// of `ARG A=$A$A` asked for terabytes. Both are far above real use (Linux refuses one environment string past
// 128 KiB, and all of them together past 2 MiB by default).
// The words one instruction substitutes together: an ARG or ENV value, a LABEL's pairs, a COPY's paths.
inline constexpr size_t kMaxSubstitutedBytes = size_t{1} << 20;
// A stage's ARG and ENV variables, names and values together; the global ARGs likewise.
inline constexpr size_t kMaxVariableBytes = size_t{4} << 20;
// The image config a build writes, as canonical JSON (its config section and history together): LABEL,
// EXPOSE, VOLUME, ENV and each instruction's history entry accumulate over lines, each line within the bounds
// above. 4 MiB is what `quorate verify --image` reads of a published config; real configs are a few KiB.
inline constexpr size_t kMaxImageConfigBytes = size_t{4} << 20;

// Parses Containerfile text. `build_args` are `--build-arg K=V` values; they reach FROM lines through global
// ARGs. bad_input "FILE:LINE: …" for: a syntax error (bad directive, unterminated quote or substitution), an
// unknown instruction or flag, an instruction before the first FROM other than ARG, a FROM that is not
// `NAME@sha256:HEX`, `scratch` or an earlier stage (a tag alone is refused: a rebuild must name bytes), a
// duplicate stage name, COPY --from naming no earlier stage nor a pinned image, ADD of a URL (network), RUN
// --mount (secret, ssh and cache mounts would make the result depend on more than the commit), ONBUILD, a
// missing argument, a global ARG past kMaxSubstitutedBytes or the global ARGs past kMaxVariableBytes;
// bad_input "FILE: …" for a build arg that no ARG declares.
Result<Containerfile> parse_containerfile(std::string_view text, const std::string& file,
                                          const std::map<std::string, std::string>& build_args = {});

// Dockerfile variable substitution over a word: `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`,
// `${VAR+w}`, `${VAR:?w}`, `${VAR?w}`, with quote removal ('…' literal, "…" expanding) and the escape
// character. An unset variable is empty. bad_input "…" (no file or line: the caller adds them) for an
// unterminated quote or `${`, an unknown modifier, `:?`/`?` on an unset variable, or a result past
// kMaxSubstitutedBytes (refused before it is allocated).
Result<std::string> substitute_word(std::string_view word, const std::map<std::string, std::string>& vars,
                                    char escape = '\\');
// The same over a line, split into words at unquoted blanks (an empty quoted word is kept); the words together
// at most kMaxSubstitutedBytes.
Result<std::vector<std::string>> substitute_words(std::string_view line, const std::map<std::string, std::string>& vars,
                                                  char escape = '\\');

// `K=V …` (each word one pair, substituted) or the legacy `K V` (the rest of the line is the value), as ENV and
// LABEL take them. `vars` are the values before the instruction. bad_input "…" for an empty name, a word
// without `=`, or names and values together past kMaxSubstitutedBytes.
Result<std::vector<std::pair<std::string, std::string>>> parse_pairs(std::string_view rest,
                                                                     const std::map<std::string, std::string>& vars,
                                                                     char escape = '\\');

// A HEALTHCHECK flag's value as the image config holds it, by BuildKit's rules. `--interval`, `--timeout`,
// `--start-period`, `--start-interval`: a Go duration ("30s", "1m30s", "1.5h", "0"; units ns us ms s m h), in
// nanoseconds, 0 (the runtime's default) or from 1ms to 2^63-1 ns. `--retries`: a decimal count, 0 to 2^31-1.
// bad_input "HEALTHCHECK --NAME=VALUE …" (no file or line: the caller adds them) for anything else.
Result<int64_t> healthcheck_flag_value(const InstructionFlag& flag);

// True for what ADD would fetch from the network: `scheme://…` or a Git `user@host:path` remote.
bool is_url_source(std::string_view source);

// `.dockerignore` patterns (Go filepath.Match per segment, `**` across segments, `!` re-includes, the last
// matching pattern wins, a pattern matching a directory excludes what is under it).
class DockerIgnore {
 public:
  // bad_input "FILE:LINE: …" for a pattern that would escape the context ("../x").
  static Result<DockerIgnore> parse(std::string_view text, const std::string& file);
  bool excluded(std::string_view path) const;  // `path` relative, '/'-separated
  bool empty() const { return patterns_.empty(); }
  size_t size() const { return patterns_.size(); }  // patterns

 private:
  struct Pattern {
    std::string glob;
    bool negated = false;
  };
  std::vector<Pattern> patterns_;
};

}  // namespace quorate::builder
