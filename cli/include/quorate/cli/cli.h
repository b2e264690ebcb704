// The `quorate` command line: one binary, one subcommand per file, exit codes mapped in one place.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace CLI {
class App;
}

namespace quorate::cli {

// Exit statuses: 0 success, 1 a verdict of failure (verification failed, quorum rejected), 2 bad usage or
// bad input (and every other error).
int exit_code(const Status& status);

// Parses argv and runs the chosen subcommand; returns the process exit status.
int run(int argc, char** argv);

// What a subcommand does once its options are parsed. Commands print their own output to stdout; the
// returned Status is printed to stderr by run() and mapped by exit_code().
using Action = std::function<Status()>;

// Each subcommand file defines one of these; it adds its subcommand to `app` and, from the subcommand's
// callback, sets `action`.
void add_normalize_command(CLI::App& app, Action& action);
void add_submit_command(CLI::App& app, Action& action);
void add_node_command(CLI::App& app, Action& action);
void add_quorum_command(CLI::App& app, Action& action);
void add_verify_command(CLI::App& app, Action& action);
void add_store_command(CLI::App& app, Action& action);
void add_key_command(CLI::App& app, Action& action);
void add_roster_command(CLI::App& app, Action& action);
void add_attest_command(CLI::App& app, Action& action);
void add_build_command(CLI::App& app, Action& action);
void add_image_command(CLI::App& app, Action& action);

// A key's passphrase from --passphrase-file: the file's first line, without its newline; "" for no file.
// bad_input when the file is unreadable, over 4 KiB or its first line is empty.
Result<std::string> read_passphrase_file(const std::string& path);

// The image store's default directory: $XDG_CACHE_HOME/quorate/images, else ~/.cache/quorate/images.
std::string default_image_store();
// The node id a signing key's file name gives when --node-id is not: the name without its directory and
// without ".pem" then ".key" (keys/node-a.key.pem -> node-a, what `key generate --out keys/node-a.key.pem` makes).
std::string node_id_from_key_path(const std::string& key_path);
void add_diff_command(CLI::App& app, Action& action);
void add_audit_command(CLI::App& app, Action& action);
void add_gate_command(CLI::App& app, Action& action);

}  // namespace quorate::cli

namespace quorate::cli {

// The one reading of SOURCE_DATE_EPOCH for every command: the flag when given, else the environment variable
// `env_value` (nullptr or empty: unset), else nullopt. usage naming the source when it is not an integer in
// 0..253402300799 (the end of year 9999, the last second RFC 3339 can write).
Result<std::optional<int64_t>> source_date_epoch_of(const std::optional<int64_t>& flag, const char* env_value);

// Milliseconds since the Unix epoch: the wall clock commands hand to libraries (which never read it).
int64_t wall_clock_ms();
// The daemons' stop flag: installs SIGTERM and SIGINT handlers that set it, and returns it for run() to watch.
const std::atomic<bool>& stop_on_termination_signals();

// $TMPDIR as set (empty when unset or empty: libraries then use /tmp, core's temp_parent).
std::filesystem::path temp_dir_from_env();
// The executable `name` in a directory of $PATH; empty when there is none.
std::filesystem::path program_on_path(std::string_view name);
// `--build-arg NAME=VALUE` flags (quorate build, submit, verify) as a map (core/build_args.h); usage when one has no
// `=` or an empty name, or a name is given twice.
Result<std::map<std::string, std::string>> parse_build_args(const std::vector<std::string>& args);

}  // namespace quorate::cli
