// build_containerfile: each stage is a FROM image plus overlay upper directories (one per RUN, COPY or ADD);
// the final stage's base layers are kept byte for byte and its upper directories become canonical layers.
#include "containerfile_build.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <unordered_map>

#include "base_image.h"
#include "overlay.h"
#include "quorate/builder/containerfile.h"
#include "quorate/builder/recipe.h"
#include "quorate/builder/reference.h"
#include "quorate/builder/sandbox.h"
#include "quorate/core/file.h"
#include "quorate/core/time.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/tar_reader.h"

namespace quorate::builder {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Vars = std::map<std::string, std::string>;
using K = Instruction::Kind;

// Docker's default PATH for RUN when the image sets none.
// Starts bubblewrap as a RUN's non-root USER (util-linux, Essential in Debian).
constexpr char kSetpriv[] = "/usr/bin/setpriv";
constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// What root may do inside a RUN: Docker's default set without MKNOD (no cgroup guards host devices here),
// NET_RAW and AUDIT_WRITE.
constexpr const char* kRunCapabilities[] = {"CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FOWNER",          "CAP_FSETID",
                                            "CAP_SETGID", "CAP_SETUID",       "CAP_SETPCAP",         "CAP_SETFCAP",
                                            "CAP_KILL",   "CAP_SYS_CHROOT",   "CAP_NET_BIND_SERVICE"};

struct StageState {
  std::optional<imagestore::VerifiedImage> image;  // the FROM image, whose layers come first
  fs::path image_root;                             // its root file system, or an empty directory (scratch)
  std::vector<fs::path> layers;                    // this stage's upper directories, bottom first
  json config = json::object();                    // the config section (Env, Cmd, …)
  json history = json::array();
  std::string os = "linux", architecture = "amd64";
  Vars args;  // ARG values in scope
  // config["Env"] as lookups, kept as each instruction changes it (rebuilding them from the JSON for every
  // instruction, and scanning it for every ENV pair, made 10,000 variables and 10,000 instructions take 27 s):
  Vars env;                                 // name -> value, the last "NAME=VALUE" entry of a name
  std::map<std::string, size_t> env_index;  // name -> the first entry of that name, the one ENV replaces
  Vars vars;                                // what `$X` means: `args` under `env`
  size_t var_bytes = 0;                     // names and values in `args` and `env`, within kMaxVariableBytes
  size_t config_bytes = 0;                  // canonical JSON of `config` and `history`, kept exact as they change
  std::vector<std::string> shell = {"/bin/sh", "-c"};
  bool cmd_set = false;  // CMD given in this stage (ENTRYPOINT then keeps it)

  std::vector<fs::path> lowers() const {
    std::vector<fs::path> out(layers.rbegin(), layers.rend());
    out.push_back(image_root);
    return out;
  }
};

// What COPY and ADD may still spend: the build's deadline, checked for each entry they write and as a file's
// bytes come, and the regular-file bytes they write together over the whole build (every stage), within the
// output limit. A file is counted at its declared size before it is written (a sparse file at its full size),
// then by what is read past that size; it is copied a buffer at a time, never held whole.
struct CopyBudget {
  const BuildDeadline& deadline;
  uint64_t max_bytes;
  uint64_t written = 0;

  Status spend(uint64_t bytes) {
    QR_RETURN_IF_ERROR(deadline.check());
    if (bytes > max_bytes - written) {
      return Status::bad_input("COPY and ADD would write more than " + std::to_string(max_bytes) +
                               " bytes of files (output limit " + std::to_string(max_bytes) +
                               " bytes: quorate build --max-output-bytes, node build.max_output_bytes)");
    }
    written += bytes;
    return Status();
  }
};

struct Lowering {
  const ContainerfileInputs& in;
  Containerfile cf;
  std::optional<DockerIgnore> ignore;
  std::optional<imagestore::ImageStore> store;
  std::vector<StageState> stages;
  std::map<std::string, StageState> images;  // COPY --from=NAME@sha256:… by reference
  ContainerfileImage out;
  int counter = 0;  // directories made so far
  bool sandbox_checked = false;
  std::string created;
  std::deque<imagestore::RootfsLease> leases;     // the FROM images' trees, held for the whole build: no rm under us
  std::unordered_map<std::string, bool> ignored;  // path -> ignore->excluded(path), as COPYs asked
  CopyBudget budget{in.deadline, in.options.max_output_bytes};
};

// Names the instruction in front of any failure of it ("Containerfile:12: …"), keeping the code.
Status within(const Lowering& L, const Instruction& i, const Status& s) {
  return s.with_context(L.cf.file + ":" + std::to_string(i.line));
}

Result<fs::path> new_dir(Lowering& L, const std::string& kind) {
  fs::path dir = L.in.work / kind / std::to_string(++L.counter);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io("create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0755);
  return dir;
}

// ---- config helpers ----

// The size of `v` as canonical JSON (core/json.h; a string that is not UTF-8, refused when the config is
// written, counted as its replacement).
size_t json_bytes(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace).size(); }

// Sizes the stage's config and history as they are now: once when a stage starts.
void count_config(StageState& s) { s.config_bytes = json_bytes(s.config) + json_bytes(s.history); }

// object[key] = value, where `object` is the stage's config or history or inside them, keeping
// s.config_bytes exact: `"key":value` and a comma when the object is not empty, or the value's change.
// (In unsigned `total - old + new` the wrap-around cancels: the total itself is never negative.)
void set_member(StageState& s, json& object, const std::string& key, json value) {
  assert(object.is_object());
  auto it = object.find(key);
  if (it != object.end()) {
    s.config_bytes = s.config_bytes - json_bytes(*it) + json_bytes(value);
    *it = std::move(value);
    return;
  }
  s.config_bytes += (object.empty() ? 0 : 1) + json_bytes(key) + 1 + json_bytes(value);
  object[key] = std::move(value);
}

void erase_member(StageState& s, json& object, const std::string& key) {
  auto it = object.find(key);
  if (it == object.end()) return;
  s.config_bytes -= (object.size() > 1 ? 1 : 0) + json_bytes(key) + 1 + json_bytes(*it);
  object.erase(it);
}

// config[name] as an object (made, or replacing what is not one, and counted), for LABEL, EXPOSE, VOLUME.
json& config_object(StageState& s, const std::string& name) {
  if (!s.config.contains(name) || !s.config[name].is_object()) set_member(s, s.config, name, json::object());
  return s.config[name];
}

// Whether the stage's config and history are still within kMaxImageConfigBytes: checked after each
// instruction, which adds at most its own bounded text (kMaxSubstitutedBytes, a line), so memory stays within
// a few MiB of the bound.
Status check_config_bytes(const StageState& s) {
  if (s.config_bytes <= kMaxImageConfigBytes) return Status();
  return Status::bad_input("the image config would be " + std::to_string(s.config_bytes) +
                           " bytes of canonical JSON (its config and history), more than " +
                           std::to_string(kMaxImageConfigBytes));
}

// Rebuilds the lookups from config["Env"] and `args`: once when a stage starts, not for each instruction.
void load_env(StageState& s) {
  s.env.clear();
  s.env_index.clear();
  if (s.config.contains("Env") && s.config["Env"].is_array()) {
    const json& entries = s.config["Env"];
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!entries[i].is_string()) continue;
      const auto& kv = entries[i].get_ref<const std::string&>();
      auto eq = kv.find('=');
      s.env_index.emplace(kv.substr(0, eq), i);
      if (eq != std::string::npos) s.env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  s.vars = s.args;
  s.var_bytes = 0;
  for (const auto& [k, v] : s.args) s.var_bytes += k.size() + v.size();
  for (const auto& [k, v] : s.env) {
    s.vars[k] = v;
    s.var_bytes += k.size() + v.size();
  }
}

// Whether setting `name` in `map` to `value` keeps the stage's variables within kMaxVariableBytes; counts it.
Status count_var(StageState& s, const Vars& map, const std::string& kind, const std::string& name,
                 const std::string& value) {
  auto it = map.find(name);
  size_t old = it == map.end() ? 0 : name.size() + it->second.size();
  size_t total = s.var_bytes - old + name.size() + value.size();
  if (total > kMaxVariableBytes) {
    return Status::bad_input(kind + " " + name + ": the stage's ARG and ENV variables would hold " +
                             std::to_string(total) + " bytes, more than " + std::to_string(kMaxVariableBytes));
  }
  s.var_bytes = total;
  return Status();
}

// ENV NAME=VALUE: replaces the entry of that name in place (Docker keeps the order), else appends one.
Status set_env(StageState& s, const std::string& name, const std::string& value) {
  QR_RETURN_IF_ERROR(count_var(s, s.env, "ENV", name, value));
  if (!s.config.contains("Env") || !s.config["Env"].is_array()) {
    set_member(s, s.config, "Env", json::array());
    s.env_index.clear();
  }
  json& env = s.config["Env"];
  json entry = name + "=" + value;
  auto [it, added] = s.env_index.emplace(name, env.size());
  if (added) {
    s.config_bytes += (env.empty() ? 0 : 1) + json_bytes(entry);
    env.push_back(std::move(entry));
  } else {
    s.config_bytes = s.config_bytes - json_bytes(env[it->second]) + json_bytes(entry);
    env[it->second] = std::move(entry);
  }
  s.env[name] = value;
  s.vars[name] = value;
  return Status();
}

// ARG NAME=VALUE: visible as `$NAME` unless ENV sets the name.
Status set_arg(StageState& s, const std::string& name, const std::string& value) {
  QR_RETURN_IF_ERROR(count_var(s, s.args, "ARG", name, value));
  s.args[name] = value;
  if (!s.env.count(name)) s.vars[name] = value;
  return Status();
}

// An absolute, lexically clean path inside the image ("/" clamps "..", as Docker does).
std::string clean_abs(const std::string& base, const std::string& path) {
  std::string full = path.empty() || path[0] != '/' ? base + "/" + path : path;
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= full.size()) {
    size_t slash = std::min(full.find('/', pos), full.size());
    std::string part = full.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

std::string workdir_of(const StageState& s) {
  return s.config.contains("WorkingDir") && s.config["WorkingDir"].is_string() &&
                 !s.config["WorkingDir"].get<std::string>().empty()
             ? s.config["WorkingDir"].get<std::string>()
             : "/";
}

void add_history(Lowering& L, StageState& s, const Instruction& i, bool empty_layer) {
  json h = {{"created", L.created}, {"created_by", i.text}};
  if (empty_layer) h["empty_layer"] = true;
  s.config_bytes += (s.history.empty() ? 0 : 1) + json_bytes(h);
  s.history.push_back(std::move(h));
}

// ---- stages ----

Result<imagestore::ImageStore*> store_of(Lowering& L) {
  if (!L.store) {
    if (L.in.options.image_store.empty())
      return Status::usage("a Containerfile build needs an image store (--image-store)");
    L.store.emplace(QR_TRY(imagestore::ImageStore::open(L.in.options.image_store)));
  }
  return &*L.store;
}

Result<StageState> image_state(Lowering& L, const std::string& name, const std::string& digest) {
  auto* store = QR_TRY(store_of(L));
  auto image = store->verify(digest);
  if (!image.ok()) return image.status().with_context("image " + name + "@" + digest);
  StageState s;
  auto lease = store->rootfs(*image, L.in.options.progress);
  if (!lease.ok()) return lease.status();
  s.image_root = lease->path();
  L.leases.push_back(std::move(*lease));
  if (image->config.contains("config") && image->config["config"].is_object()) s.config = image->config["config"];
  if (image->config.contains("history") && image->config["history"].is_array()) s.history = image->config["history"];
  s.os = image->config.value("os", "linux");
  s.architecture = image->config.value("architecture", "amd64");
  s.image = std::move(*image);
  load_env(s);
  auto entry = std::make_pair(name, digest);
  if (std::find(L.out.base_images.begin(), L.out.base_images.end(), entry) == L.out.base_images.end()) {
    L.out.base_images.push_back(entry);
  }
  return s;
}

Result<StageState> start_stage(Lowering& L, const Stage& st) {
  if (st.base == Stage::Base::kStage) {
    StageState s = L.stages[st.base_stage];
    s.args.clear();
    s.cmd_set = false;
    load_env(s);
    return s;
  }
  if (st.base == Stage::Base::kImage) return image_state(L, st.image_name, st.digest);
  StageState s;
  s.image_root = QR_TRY(new_dir(L, "scratch"));
  return s;
}

// ---- metadata instructions ----

Status apply_arg(Lowering& L, StageState& s, const Instruction& i) {
  auto words = QR_TRY(substitute_words(i.args[0], s.vars, L.cf.escape));
  for (const auto& w : words) {
    auto eq = w.find('=');
    std::string name = w.substr(0, eq);
    std::optional<std::string> value;
    if (auto it = L.cf.build_args.find(name); it != L.cf.build_args.end()) {
      value = it->second;
    } else if (eq != std::string::npos) {
      value = w.substr(eq + 1);
    } else {
      for (const auto& g : L.cf.global_args) {
        if (g.name == name) value = g.value;
      }
    }
    if (value) QR_RETURN_IF_ERROR(set_arg(s, name, *value));
  }
  return Status();
}

std::vector<std::string> command_of(const StageState& s, const Instruction& i) {
  if (i.exec_form) return i.args;
  std::vector<std::string> argv = s.shell;
  argv.push_back(i.args[0]);
  return argv;
}

Status apply_healthcheck(StageState& s, const Instruction& i) {
  json h = json::object();
  if (i.healthcheck_none) {
    h["Test"] = {"NONE"};
  } else {
    json test = json::array();
    if (i.exec_form) {
      test.push_back("CMD");
      for (const auto& a : i.args) test.push_back(a);
    } else {
      test = {"CMD-SHELL", i.args[0]};
    }
    h["Test"] = test;
    const std::pair<const char*, const char*> durations[] = {{"interval", "Interval"},
                                                             {"timeout", "Timeout"},
                                                             {"start-period", "StartPeriod"},
                                                             {"start-interval", "StartInterval"}};
    // A zero is left out, as Docker and BuildKit write it (Go's omitempty; zero means "the default" either way).
    auto set = [&](const char* flag, const char* key) -> Status {
      if (auto v = i.flag(flag)) {
        const int64_t n = QR_TRY(healthcheck_flag_value({flag, *v}));
        if (n != 0) h[key] = n;
      }
      return Status();
    };
    for (const auto& [flag, key] : durations) QR_RETURN_IF_ERROR(set(flag, key));
    QR_RETURN_IF_ERROR(set("retries", "Retries"));
  }
  set_member(s, s.config, "Healthcheck", std::move(h));
  return Status();
}

Status apply_expose(Lowering& L, StageState& s, const Instruction& i) {
  auto words = QR_TRY(substitute_words(i.args[0], s.vars, L.cf.escape));
  for (auto port : words) {
    std::string proto = "tcp";
    if (auto slash = port.find('/'); slash != std::string::npos) {
      proto = port.substr(slash + 1);
      port = port.substr(0, slash);
    }
    bool digits = !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), ::isdigit);
    if (!digits || std::stoi(port) > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp")) {
      return Status::bad_input("EXPOSE " + port + "/" + proto + " is not PORT[/tcp|udp|sctp]");
    }
    set_member(s, config_object(s, "ExposedPorts"), port + "/" + proto, json::object());
  }
  return Status();
}

Status apply_metadata(Lowering& L, StageState& s, const Instruction& i) {
  const Vars& vars = s.vars;
  switch (i.kind) {
    case K::kEnv: {
      auto pairs = QR_TRY(parse_pairs(i.args[0], vars, L.cf.escape));
      for (const auto& [k, v] : pairs) QR_RETURN_IF_ERROR(set_env(s, k, v));
      return Status();
    }
    case K::kLabel: {
      auto pairs = QR_TRY(parse_pairs(i.args[0], vars, L.cf.escape));
      for (const auto& [k, v] : pairs) set_member(s, config_object(s, "Labels"), k, v);
      return Status();
    }
    case K::kArg:
      return apply_arg(L, s, i);
    case K::kWorkdir:
      set_member(s, s.config, "WorkingDir",
                 clean_abs(workdir_of(s), QR_TRY(substitute_word(i.args[0], vars, L.cf.escape))));
      return Status();
    case K::kUser:
      set_member(s, s.config, "User", QR_TRY(substitute_word(i.args[0], vars, L.cf.escape)));
      return Status();
    case K::kStopSignal:
      set_member(s, s.config, "StopSignal", QR_TRY(substitute_word(i.args[0], vars, L.cf.escape)));
      return Status();
    case K::kShell:
      s.shell = i.args;
      return Status();
    case K::kEntrypoint:
      set_member(s, s.config, "Entrypoint", command_of(s, i));
      if (!s.cmd_set) erase_member(s, s.config, "Cmd");  // an inherited CMD does not survive a new ENTRYPOINT
      return Status();
    case K::kCmd:
      set_member(s, s.config, "Cmd", command_of(s, i));
      s.cmd_set = true;
      return Status();
    case K::kExpose:
      return apply_expose(L, s, i);
    case K::kVolume: {
      std::vector<std::string> paths = i.exec_form ? i.args : QR_TRY(substitute_words(i.args[0], vars, L.cf.escape));
      for (const auto& p : paths) set_member(s, config_object(s, "Volumes"), p, json::object());
      return Status();
    }
    case K::kHealthcheck:
      return apply_healthcheck(s, i);
    default:
      return Status::internal("not a metadata instruction");
  }
}

// ---- COPY / ADD: writing into a mounted stage root, every path resolved inside it ----

Result<int> open_in_root(int root, const std::string& rel, uint64_t flags, uint64_t resolve_extra = 0) {
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | resolve_extra;
  std::string path = rel.empty() ? "." : rel;
  long fd = ::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
  if (fd < 0) return Status::from_errno("open /" + rel + " in the stage", errno);
  return static_cast<int>(fd);
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// The directory `rel` (no leading '/') of the stage, made (0755, root) where missing.
Result<int> make_dirs(int root, const std::string& rel) {
  std::string done;
  size_t pos = 0;
  while (true) {
    auto fd = open_in_root(root, done, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) return fd.status();
    if (pos >= rel.size()) return *fd;
    Fd parent{*fd};
    size_t slash = std::min(rel.find('/', pos), rel.size());
    std::string name = rel.substr(pos, slash - pos);
    pos = slash + 1;
    if (::mkdirat(parent.fd, name.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::from_errno("mkdir /" + (done.empty() ? "" : done + "/") + name, errno);
    }
    done += (done.empty() ? "" : "/") + name;
  }
}

struct Owner {
  uid_t uid = 0;
  gid_t gid = 0;
};

std::pair<std::string, std::string> split_parent(const std::string& rel) {
  auto slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

// Replaces whatever non-directory is at `name` in `dir`.
Status clear_name(int dir, const std::string& name, const std::string& rel) {
  struct stat st;
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Status();
  if (S_ISDIR(st.st_mode)) return Status::bad_input("cannot replace directory /" + rel + " with a file");
  if (::unlinkat(dir, name.c_str(), 0) != 0) return Status::from_errno("remove /" + rel, errno);
  return Status();
}

// Creates the regular file `rel` (replacing a non-directory), lets `fill` write its bytes, then sets its owner
// and mode.
Status write_file_with(int root, const std::string& rel, uint32_t mode, Owner o,
                       const std::function<Status(int fd, const std::string& what)>& fill) {
  auto [dir, name] = split_parent(rel);
  Fd parent{QR_TRY(make_dirs(root, dir))};
  QR_RETURN_IF_ERROR(clear_name(parent.fd, name, rel));
  Fd f{::openat(parent.fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  if (f.fd < 0) return Status::from_errno("create /" + rel, errno);
  QR_RETURN_IF_ERROR(fill(f.fd, "/" + rel));
  if (::fchown(f.fd, o.uid, o.gid) != 0 || ::fchmod(f.fd, mode) != 0)
    return Status::from_errno("set owner and mode of /" + rel, errno);
  return Status();
}

// Writes `rel` from `read` (which fills up to `size` bytes of `buf` and says how many, 0 at the end), a buffer at
// a time, counting `declared` bytes first and anything read past them as it comes.
Status write_file_streamed(int root, const std::string& rel, uint32_t mode, Owner o, uint64_t declared,
                           CopyBudget& budget, const std::function<Result<size_t>(char* buf, size_t size)>& read) {
  QR_RETURN_IF_ERROR(budget.spend(declared));
  return write_file_with(root, rel, mode, o, [&](int fd, const std::string& what) -> Status {
    std::vector<char> buf(size_t{1} << 16);
    uint64_t got = 0;
    while (true) {
      size_t n = QR_TRY(read(buf.data(), buf.size()));
      if (n == 0) return Status();
      got += n;
      QR_RETURN_IF_ERROR(budget.spend(got > declared ? std::min<uint64_t>(n, got - declared) : 0));
      QR_RETURN_IF_ERROR(write_all(fd, {reinterpret_cast<const uint8_t*>(buf.data()), n}, what.c_str()));
    }
  });
}

Status write_symlink(int root, const std::string& rel, const std::string& target, Owner o) {
  auto [dir, name] = split_parent(rel);
  Fd parent{QR_TRY(make_dirs(root, dir))};
  QR_RETURN_IF_ERROR(clear_name(parent.fd, name, rel));
  if (::symlinkat(target.c_str(), parent.fd, name.c_str()) != 0) return Status::from_errno("symlink /" + rel, errno);
  if (::fchownat(parent.fd, name.c_str(), o.uid, o.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return Status::from_errno("chown /" + rel, errno);
  return Status();
}

Status write_dir(int root, const std::string& rel, uint32_t mode, Owner o) {
  if (rel.empty()) return Status();
  Fd d{QR_TRY(make_dirs(root, rel))};
  if (::fchown(d.fd, o.uid, o.gid) != 0 || ::fchmod(d.fd, mode) != 0)
    return Status::from_errno("set owner and mode of /" + rel, errno);
  return Status();
}

struct CopyOp {
  std::vector<std::string> sources;
  std::string dest;  // absolute, clean
  bool dest_dir = false;
  Owner owner;
  std::string chown;  // --chown as written (substituted); `owner` once resolved
  std::optional<uint32_t> chmod;
  bool add = false;
  CopyBudget* budget = nullptr;  // the build's
};

std::string join_rel(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (name.empty()) return dir;
  return dir + "/" + name;
}

std::string base_name(const std::string& p) {
  return p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
}

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// ADD of a local archive: extracted into the destination directory; every path checked, owners as recorded.
Result<bool> extract_archive(int root, const std::string& bytes, const std::string& dest, const CopyOp& op) {
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  normalize::support_layer_compressions(a);
  struct Closer {
    struct archive* a;
    ~Closer() { archive_read_free(a); }
  } closer{a};
  if (archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) return false;
  // Read by normalize's rules (tar_reader.h). Not a tar at all: ADD copies it like COPY. A tar that goes wrong
  // at any entry is an error, never a partial extraction.
  auto first = normalize::next_entry(a, "ADD archive");
  if (!first.ok() && archive_format(a) == 0) return false;
  struct archive_entry* e = QR_TRY(std::move(first));
  if (e == nullptr) return false;
  for (; e != nullptr; e = QR_TRY(normalize::next_entry(a, "ADD archive"))) {
    QR_RETURN_IF_ERROR(op.budget->spend(0));
    auto path = normalize::canonical_path(normalize::raw_path(e) ? normalize::raw_path(e) : "");
    if (!path.ok()) return path.status().with_context("ADD archive");
    std::string rel = join_rel(dest, *path);
    Owner o = op.owner;
    if (op.owner.uid == 0 && op.owner.gid == 0)
      o = {static_cast<uid_t>(archive_entry_uid(e)), static_cast<gid_t>(archive_entry_gid(e))};
    uint32_t mode = op.chmod.value_or(archive_entry_perm(e) & 07777);
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        QR_RETURN_IF_ERROR(write_dir(root, rel, mode, o));
        break;
      case AE_IFLNK:
        QR_RETURN_IF_ERROR(write_symlink(root, rel, archive_entry_symlink(e) ? archive_entry_symlink(e) : "", o));
        break;
      case AE_IFREG: {
        if (archive_entry_hardlink(e))
          return Status::unsupported("ADD archive: hardlink " + *path + " is not supported yet");
        uint64_t declared = archive_entry_size(e) > 0 ? static_cast<uint64_t>(archive_entry_size(e)) : 0;
        QR_RETURN_IF_ERROR(write_file_streamed(
            root, rel, mode, o, declared, *op.budget, [&](char* buf, size_t size) -> Result<size_t> {
              la_ssize_t n = archive_read_data(a, buf, size);
              if (n >= 0) return static_cast<size_t>(n);
              const char* why = archive_error_string(a);
              return Status::bad_input("ADD archive: " + *path + ": " + (why ? why : "read error"));
            }));
        break;
      }
      default:
        return Status::unsupported("ADD archive: " + *path + " is a device or fifo, which is not supported");
    }
  }
  return true;
}

// ---- USER and --chown names: the stage's /etc/passwd and /etc/group, as Docker (runc) reads them ----

struct ExecUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary: the groups listing the user by name (none with an explicit group)
  std::string home = "/";
};

// The colon-separated records of /etc/passwd or /etc/group in the stage ("" when the file is missing).
Result<std::vector<std::vector<std::string>>> stage_records(int root, const std::string& rel) {
  std::vector<std::vector<std::string>> out;
  auto fd = open_in_root(root, rel, O_RDONLY | O_NONBLOCK);
  if (!fd.ok()) return out;
  Fd f{*fd};
  struct stat st;
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) return out;
  if (st.st_size > (16 << 20)) return Status::bad_input("/" + rel + " of the stage is larger than 16 MiB");
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(f.fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.find('\n', pos), text.size());
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    size_t f0 = 0;
    while (true) {
      size_t colon = line.find(':', f0);
      fields.push_back(line.substr(f0, colon == std::string::npos ? std::string::npos : colon - f0));
      if (colon == std::string::npos) break;
      f0 = colon + 1;
    }
    out.push_back(std::move(fields));
  }
  return out;
}

std::optional<uint32_t> numeric_id(const std::string& s) {
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
  unsigned long long v = std::stoull(s);
  if (v > 0xFFFFFFFEull) return std::nullopt;
  return static_cast<uint32_t>(v);
}

// `name` or `id` looked up in records (name first field, id third); the record, if any.
const std::vector<std::string>* find_record(const std::vector<std::vector<std::string>>& records,
                                            const std::string& key, size_t min_fields) {
  auto id = numeric_id(key);
  for (const auto& r : records) {
    if (r.size() < min_fields) continue;
    if (r[0] == key || (id && numeric_id(r[2]) == id)) return &r;
  }
  return nullptr;
}

// USER's value (`user[:group]`, names or numbers) resolved in the stage's root `root` as runc does: a user found
// in /etc/passwd gives its uid, primary gid and home; a number not found is that uid with gid 0; an explicit
// group is looked up in /etc/group (or is a number); without one, the groups listing the user are supplementary.
// bad_input naming the user or group when a name is in neither file.
Result<ExecUser> resolve_user(int root, const std::string& spec) {
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon), group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  auto passwd = QR_TRY(stage_records(root, "etc/passwd"));
  auto groups = QR_TRY(stage_records(root, "etc/group"));
  ExecUser u;
  std::string matched_name;
  if (const auto* r = find_record(passwd, user, 6)) {
    u.uid = numeric_id((*r)[2]).value_or(0);
    u.gid = numeric_id((*r)[3]).value_or(0);
    u.home = (*r)[5].empty() ? "/" : (*r)[5];
    matched_name = (*r)[0];
  } else if (auto id = numeric_id(user)) {
    u.uid = *id;
  } else {
    return Status::bad_input("user " + user + " is not in the stage's /etc/passwd");
  }
  if (!group.empty()) {
    if (const auto* r = find_record(groups, group, 3)) {
      u.gid = numeric_id((*r)[2]).value_or(0);
    } else if (auto id = numeric_id(group)) {
      u.gid = *id;
    } else {
      return Status::bad_input("group " + group + " is not in the stage's /etc/group");
    }
  } else if (!matched_name.empty()) {
    std::set<gid_t> extra;
    for (const auto& r : groups) {
      if (r.size() < 4 || !numeric_id(r[2])) continue;
      size_t pos = 0;
      const std::string& members = r[3];
      while (pos <= members.size()) {
        size_t comma = std::min(members.find(',', pos), members.size());
        if (members.substr(pos, comma - pos) == matched_name) extra.insert(*numeric_id(r[2]));
        pos = comma + 1;
      }
    }
    u.groups.assign(extra.begin(), extra.end());
  }
  return u;
}

// `--chown=user[:group]` by name or number, in the destination stage: a user without a group gives its uid as the
// gid too, as the Dockerfile reference says. bad_input for names the stage does not have.
Result<Owner> resolve_chown(int root, const std::string& spec) {
  auto colon = spec.find(':');
  std::string user = spec.substr(0, colon), group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (user.empty()) return Status::bad_input("--chown=" + spec + " names no user");
  auto lookup = [&](const std::string& key, const char* file, size_t min_fields) -> Result<uint32_t> {
    if (auto id = numeric_id(key)) return *id;
    auto records = QR_TRY(stage_records(root, file));
    const auto* r = find_record(records, key, min_fields);
    auto id = r ? numeric_id((*r)[2]) : std::nullopt;
    if (!id) return Status::bad_input("--chown: " + key + " is not in the stage's /" + file);
    return *id;
  };
  Owner o;
  o.uid = QR_TRY(lookup(user, "etc/passwd", 4));
  o.gid = group.empty() ? o.uid : QR_TRY(lookup(group, "etc/group", 3));
  return o;
}

// ---- RUN ----

bool is_root_user(const std::string& user) {
  return user.empty() || user == "0" || user == "root" || user == "0:0" || user == "root:root" || user == "root:0" ||
         user == "0:root";
}

Vars run_env(Lowering& L, const StageState& s) {
  Vars env = s.vars;
  Vars added = {{"PATH", kDefaultPath}, {"HOME", "/root"}, {"SOURCE_DATE_EPOCH", std::to_string(L.in.epoch)}};
  for (const auto& [k, v] : added) {
    if (!env.count(k)) {
      env[k] = v;
      L.out.environment[k] = v;
    }
  }
  return env;
}

std::vector<std::string> bwrap_argv(const BuildOptions& o, const fs::path& root, const Vars& env,
                                    const std::string& cwd, const std::vector<std::string>& command) {
  std::vector<std::string> a = {
      o.bwrap.string(),       "--unshare-ipc",     "--unshare-pid", "--unshare-net", "--unshare-uts",
      "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop",    "ALL"};
  for (const char* cap : kRunCapabilities) a.insert(a.end(), {"--cap-add", cap});
  a.insert(a.end(), {"--bind", root.string(), "/", "--dev", "/dev", "--proc", "/proc", "--clearenv"});
  for (const auto& [k, v] : env) a.insert(a.end(), {"--setenv", k, v});
  a.insert(a.end(), {"--dir", cwd, "--chdir", cwd, "--"});
  a.insert(a.end(), command.begin(), command.end());
  return a;
}

Status check_run_possible(Lowering& L) {
  if (L.sandbox_checked) return Status();
  if (L.in.options.sandbox == Sandbox::kNone) {
    return Status::usage("--no-sandbox cannot run a Containerfile's RUN: it runs in the stage's root file system");
  }
  auto sandbox = QR_TRY(resolve_sandbox(Sandbox::kBubblewrap, L.in.options.bwrap));
  (void)sandbox;
  L.sandbox_checked = true;
  return Status();
}

// A step that writes a layer (RUN, COPY): the stage's layers mounted by overlayfs at a new `merged` directory,
// in a private mount namespace, with a new upper directory that `step(upper, merged)` fills. The upper directory,
// returned, holds the step's changes; the overlay's work directory is removed.
Result<fs::path> in_stage_overlay(Lowering& L, const StageState& s, const Instruction& i,
                                  const std::function<Status(const fs::path& upper, const fs::path& merged)>& step) {
  fs::path upper = QR_TRY(new_dir(L, "layer"));
  fs::path work = QR_TRY(new_dir(L, "ovl"));
  fs::path merged = QR_TRY(new_dir(L, "root"));
  if (L.in.options.progress)
    L.in.options.progress(L.cf.file + ":" + std::to_string(i.line) + ": " + i.text.substr(0, 100));
  Status ran = in_private_mounts([&]() -> Status {
    QR_RETURN_IF_ERROR(mount_overlay(s.lowers(), upper, work, merged));
    return step(upper, merged);
  });
  QR_RETURN_IF_ERROR(ran);
  fs::remove_all(work);
  return upper;
}

// Runs `argv` (bubblewrap, or setpriv starting it) with the build's log, cancel flag and deadline. No sandbox of
// the runner's own: bwrap itself is the command, and the root it gives the step is the stage, not the host.
Status run_bwrap_step(const Lowering& L, const fs::path& layer, std::vector<std::string> argv) {
  RunSpec spec;
  spec.watched = {layer};
  spec.max_growth = growth_bound(L.in.options.max_output_bytes);
  spec.argv = std::move(argv);
  spec.src_dir = L.in.work;
  spec.out_dir = L.in.work;
  spec.log = L.in.work / "build.log";
  spec.sandbox = Sandbox::kNone;
  spec.cancel = L.in.options.cancel;
  spec.deadline = L.in.deadline.at();
  Status ran = run_step(spec);
  std::string message = ran.message();
  if (message.rfind("timed out", 0) != 0) return ran;
  return Status::bad_input(message.insert(9, L.in.deadline.limit_text()));
}

// RUN under a non-root USER: bubblewrap started by util-linux setpriv as the resolved uid, gid and groups, in a
// user namespace mapping them to themselves, without capabilities (Docker gives a non-root user none). Files
// the step creates are owned by that user. WORKDIR and bubblewrap's /dev and /proc mount points are made as root
// first (Docker makes WORKDIR as root too), and the stage's root is bound where the user can reach it.
Status run_as_user(Lowering& L, StageState& s, const Instruction& i, const std::string& user) {
  if (::access(kSetpriv, X_OK) != 0) {
    return Status::unsupported(std::string("RUN as USER ") + user + " needs " + kSetpriv + " (util-linux)");
  }
  Vars env = run_env(L, s);
  const std::string cwd = workdir_of(s);
  auto step = [&](const fs::path& layer, const fs::path& merged) -> Status {
    Fd root{::open(merged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (root.fd < 0) return Status::from_errno("open " + merged.string(), errno);
    ExecUser u = QR_TRY(resolve_user(root.fd, user));
    if (u.uid == 0) return Status::unsupported("USER " + user + " is uid 0 with another group: not supported for RUN");
    std::vector<std::string> made;
    for (const char* mount_point : {"dev", "proc"}) {
      struct stat st;
      if (::fstatat(root.fd, mount_point, &st, AT_SYMLINK_NOFOLLOW) != 0) made.push_back(mount_point);
    }
    for (const auto& dir : made) {
      Fd d{QR_TRY(make_dirs(root.fd, dir))};
    }
    if (cwd != "/") {
      Fd d{QR_TRY(make_dirs(root.fd, cwd.substr(1)))};
    }
    fs::path reachable = QR_TRY(expose_for_user(merged, L.in.work));
    if (!s.vars.count("HOME")) env["HOME"] = u.home;
    std::vector<std::string> argv = {kSetpriv, "--reuid=" + std::to_string(u.uid), "--regid=" + std::to_string(u.gid)};
    if (u.groups.empty()) {
      argv.push_back("--clear-groups");
    } else {
      std::string list;
      for (gid_t g : u.groups) list += (list.empty() ? "" : ",") + std::to_string(g);
      argv.push_back("--groups=" + list);
    }
    argv.insert(argv.end(),
                {"--", L.in.options.bwrap.string(), "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
                 "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--bind",
                 reachable.string(), "/", "--dev", "/dev", "--proc", "/proc", "--clearenv"});
    for (const auto& [k, v] : env) argv.insert(argv.end(), {"--setenv", k, v});
    argv.insert(argv.end(), {"--chdir", cwd, "--"});
    auto command = command_of(s, i);
    argv.insert(argv.end(), command.begin(), command.end());
    Status st = run_bwrap_step(L, layer, std::move(argv));
    for (const auto& dir : made) ::rmdir((layer / dir).c_str());  // mount points, not the step's work
    return st;
  };
  fs::path upper = QR_TRY(in_stage_overlay(L, s, i, step));
  s.layers.push_back(upper);
  L.out.ran = true;
  return Status();
}

Status run(Lowering& L, StageState& s, const Instruction& i) {
  QR_RETURN_IF_ERROR(check_run_possible(L));
  std::string user = s.config.value("User", "");
  if (!is_root_user(user)) return run_as_user(L, s, i, user);
  auto step = [&](const fs::path& layer, const fs::path& merged) -> Status {
    std::error_code ec;
    bool had_dev = fs::exists(merged / "dev", ec), had_proc = fs::exists(merged / "proc", ec);
    Status st =
        run_bwrap_step(L, layer, bwrap_argv(L.in.options, merged, run_env(L, s), workdir_of(s), command_of(s, i)));
    if (!had_dev) ::rmdir((layer / "dev").c_str());  // bwrap's mount points, not the step's work
    if (!had_proc) ::rmdir((layer / "proc").c_str());
    return st;
  };
  fs::path upper = QR_TRY(in_stage_overlay(L, s, i, step));
  s.layers.push_back(upper);
  L.out.ran = true;
  return Status();
}

// COPY from the commit's tree (minus .dockerignore).
Status copy_from_commit(Lowering& L, int root, const CopyOp& op) {
  const auto& entries = L.in.source.entries();
  auto ignored = [&](const std::string& p) {
    if (!L.ignore) return false;
    auto [it, fresh] = L.ignored.try_emplace(p, false);  // each path matched once, however many COPYs
    if (fresh) it->second = L.ignore->excluded(p);
    return it->second;
  };
  auto copy_entry = [&](const TreeEntry& e, const std::string& rel) -> Status {
    QR_RETURN_IF_ERROR(op.budget->spend(0));
    Owner o = op.owner;
    if (e.kind == TreeEntry::Kind::kDirectory) return write_dir(root, rel, op.chmod.value_or(0755), o);
    if (e.kind == TreeEntry::Kind::kSymlink) return write_symlink(root, rel, QR_TRY(L.in.source.read_blob(e.oid)), o);
    QR_RETURN_IF_ERROR(op.budget->spend(e.size));  // counted before the blob is read
    auto bytes = QR_TRY(L.in.source.read_blob(e.oid));
    if (op.add) {
      std::string dir = op.dest_dir ? op.dest.substr(1) : split_parent(op.dest.substr(1)).first;
      op.budget->written -= e.size;  // an archive counts by what it extracts
      if (QR_TRY(extract_archive(root, bytes, dir, op))) return Status();
      QR_RETURN_IF_ERROR(op.budget->spend(e.size));
    }
    uint32_t mode = op.chmod.value_or(e.kind == TreeEntry::Kind::kExecutable ? 0755 : 0644);
    return write_file_with(root, rel, mode, o, [&](int fd, const std::string& what) {
      return write_all(fd, {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, what.c_str());
    });
  };
  std::string dest = op.dest.substr(1);
  for (const auto& raw : op.sources) {
    std::string src = clean_abs("/", raw).substr(1);
    std::vector<const TreeEntry*> matches;
    for (const auto& e : entries) {
      if (ignored(e.path)) continue;
      if (has_glob(src) ? glob_match(src, e.path) : e.path == src) matches.push_back(&e);
    }
    if (src.empty()) {
      QR_RETURN_IF_ERROR(write_dir(root, dest, 0755, {}));
      for (const auto& e : entries) {
        if (!ignored(e.path)) QR_RETURN_IF_ERROR(copy_entry(e, join_rel(dest, e.path)));
      }
      continue;
    }
    if (matches.empty())
      return Status::bad_input("source " + raw + " is not in commit " + L.in.source.commit_id() +
                               " (or .dockerignore excludes it)");
    for (const TreeEntry* m : matches) {
      if (m->kind != TreeEntry::Kind::kDirectory) {
        QR_RETURN_IF_ERROR(copy_entry(*m, op.dest_dir ? join_rel(dest, base_name(m->path)) : dest));
        continue;
      }
      QR_RETURN_IF_ERROR(write_dir(root, dest, 0755, {}));
      std::string prefix = m->path + "/";
      for (const auto& e : entries) {
        if (e.path.compare(0, prefix.size(), prefix) == 0 && !ignored(e.path)) {
          QR_RETURN_IF_ERROR(copy_entry(e, join_rel(dest, e.path.substr(prefix.size()))));
        }
      }
    }
  }
  return Status();
}

// Copies the open entry `src` (of the other stage) to `rel`, directories recursively, never following links.
Status copy_tree(int root, int src, const struct stat& st, const std::string& rel, const CopyOp& op, int depth) {
  if (depth > 256) return Status::bad_input("COPY --from: directories nested too deep at /" + rel);
  QR_RETURN_IF_ERROR(op.budget->spend(0));
  if (S_ISREG(st.st_mode)) {
    return write_file_streamed(root, rel, op.chmod.value_or(st.st_mode & 07777), op.owner,
                               static_cast<uint64_t>(st.st_size), *op.budget,
                               [&](char* buf, size_t size) -> Result<size_t> {
                                 ssize_t n = ::read(src, buf, size);
                                 if (n < 0) return Status::from_errno("read for /" + rel, errno);
                                 return static_cast<size_t>(n);
                               });
  }
  if (!S_ISDIR(st.st_mode)) return Status::unsupported("COPY --from: /" + rel + " is a device, fifo or socket");
  QR_RETURN_IF_ERROR(write_dir(root, rel, op.chmod.value_or(st.st_mode & 07777), op.owner));
  int dup = ::dup(src);
  DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
  if (!d) return Status::from_errno("list for /" + rel, errno);
  std::vector<std::string> names;
  while (struct dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    struct stat cst;
    if (::fstatat(src, name.c_str(), &cst, AT_SYMLINK_NOFOLLOW) != 0) return Status::from_errno("lstat " + name, errno);
    std::string child = join_rel(rel, name);
    if (S_ISLNK(cst.st_mode)) {
      char target[4096];
      ssize_t n = ::readlinkat(src, name.c_str(), target, sizeof target);
      if (n < 0 || n == sizeof target) return Status::from_errno("readlink " + name, errno);
      QR_RETURN_IF_ERROR(write_symlink(root, child, std::string(target, static_cast<size_t>(n)), op.owner));
      continue;
    }
    if (S_ISCHR(cst.st_mode) && cst.st_rdev == 0) continue;  // a whiteout seen through a single-directory stage
    Fd c{::openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)};
    if (c.fd < 0) return Status::from_errno("open " + name, errno);
    QR_RETURN_IF_ERROR(copy_tree(root, c.fd, cst, child, op, depth + 1));
  }
  return Status();
}

// The paths (relative, sorted) of a stage that a source with wildcards names: each '/'-separated segment
// matched against one directory's entries (`*`, `?`, `[…]` as Go's filepath.Match; links are not followed).
Result<std::vector<std::string>> stage_glob(int src_root, const std::string& pattern) {
  std::vector<std::string> current = {""};
  size_t pos = 0;
  while (pos < pattern.size()) {
    size_t slash = std::min(pattern.find('/', pos), pattern.size());
    std::string seg = pattern.substr(pos, slash - pos);
    pos = slash + 1;
    std::vector<std::string> next;
    for (const auto& dir : current) {
      auto fd = open_in_root(src_root, dir, O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
      if (!fd.ok()) continue;  // not a directory: nothing below it matches
      int dup = ::dup(*fd);
      ::close(*fd);
      DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
      if (!d) return Status::from_errno("list /" + dir, errno);
      std::vector<std::string> names;
      while (struct dirent* ent = ::readdir(d)) {
        std::string name = ent->d_name;
        if (name != "." && name != ".." && (has_glob(seg) ? glob_match(seg, name) : name == seg)) names.push_back(name);
      }
      ::closedir(d);
      std::sort(names.begin(), names.end());
      for (const auto& n : names) next.push_back(join_rel(dir, n));
    }
    current = std::move(next);
  }
  return current;
}

// COPY --from: the other stage (or pinned image) mounted read-only; sources resolved inside its root.
Status copy_from_stage(Lowering& L, int root, const CopyOp& op, const StageState& from) {
  fs::path view = from.image_root;
  if (!from.layers.empty()) {
    view = QR_TRY(new_dir(L, "from"));
    QR_RETURN_IF_ERROR(mount_overlay(from.lowers(), {}, {}, view));
  }
  Fd src_root{::open(view.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (src_root.fd < 0) return Status::from_errno("open " + view.string(), errno);
  auto copy_one = [&](const std::string& src, const std::string& raw) -> Status {
    auto fd = open_in_root(src_root.fd, src, O_RDONLY | O_NONBLOCK);
    if (!fd.ok()) return Status::bad_input("source " + raw + " is not in the stage: " + fd.status().message());
    Fd f{*fd};
    struct stat st;
    if (::fstat(f.fd, &st) != 0) return Status::from_errno("stat " + raw, errno);
    std::string dest = op.dest.substr(1);
    if (!S_ISDIR(st.st_mode) && op.dest_dir) dest = join_rel(dest, base_name(src));
    return copy_tree(root, f.fd, st, dest, op, 0);
  };
  for (const auto& raw : op.sources) {
    std::string src = clean_abs("/", raw).substr(1);
    if (!has_glob(src)) {
      QR_RETURN_IF_ERROR(copy_one(src, raw));
      continue;
    }
    auto matches = QR_TRY(stage_glob(src_root.fd, src));
    if (matches.empty()) return Status::bad_input("source " + raw + " matches nothing in the stage");
    for (const auto& m : matches) QR_RETURN_IF_ERROR(copy_one(m, "/" + m));
  }
  return Status();
}

Result<const StageState*> copy_source_stage(Lowering& L, const std::string& from, size_t current) {
  std::string name = from;
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  if (!name.empty() && name.size() < 6 && std::all_of(name.begin(), name.end(), ::isdigit)) {
    size_t index = std::stoul(name);
    if (index < current) return &L.stages[index];
  }
  for (size_t s = 0; s < current; ++s) {
    if (L.cf.stages[s].name == name) return &L.stages[s];
  }
  auto ref = parse_image_reference(from, "COPY --from");
  if (!ref.ok() || ref->digest.empty())
    return Status::bad_input("COPY --from=" + from + " names no earlier stage and no pinned image");
  if (!L.images.count(from)) L.images.emplace(from, QR_TRY(image_state(L, ref->name, ref->digest)));
  return &L.images.at(from);
}

Result<CopyOp> copy_op(Lowering& L, const StageState& s, const Instruction& i) {
  const Vars& vars = s.vars;
  std::vector<std::string> words;
  if (i.exec_form) {
    size_t total = 0;  // the words together, as substitute_words bounds them
    for (const auto& a : i.args) {
      words.push_back(QR_TRY(substitute_word(a, vars, L.cf.escape)));
      total += words.back().size();
      if (total > kMaxSubstitutedBytes) {
        return Status::bad_input("substitution makes more than " + std::to_string(kMaxSubstitutedBytes) +
                                 " bytes (the most one instruction's substituted words may hold)");
      }
    }
  } else {
    words = QR_TRY(substitute_words(i.args[0], vars, L.cf.escape));
  }
  if (words.size() < 2) return Status::bad_input("needs a source and a destination");
  CopyOp op;
  op.add = i.kind == K::kAdd;
  op.budget = &L.budget;
  op.sources.assign(words.begin(), words.end() - 1);
  for (const auto& src : op.sources) {
    if (is_url_source(src))
      return Status::bad_input("ADD of a URL (" + src + ") is refused: a rebuild must not fetch from the network");
  }
  const std::string& dest = words.back();
  op.dest = clean_abs(workdir_of(s), dest);
  op.dest_dir = dest.back() == '/' || op.sources.size() > 1 || has_glob(op.sources[0]);
  if (auto c = i.flag("chown")) {
    op.chown = QR_TRY(substitute_word(*c, vars, L.cf.escape));  // resolved in the mounted stage
  }
  if (auto m = i.flag("chmod")) {
    std::string text = QR_TRY(substitute_word(*m, vars, L.cf.escape));
    char* end = nullptr;
    unsigned long mode = std::strtoul(text.c_str(), &end, 8);
    if (text.empty() || *end || mode > 07777) return Status::bad_input("--chmod=" + text + " is not an octal mode");
    op.chmod = static_cast<uint32_t>(mode);
  }
  return op;
}

// Sets the times of everything a COPY/ADD layer holds (its overlay upper directory, not mounted now) to
// SOURCE_DATE_EPOCH, links not followed. Docker keeps the build context's times, which differ between clones and
// checkouts; here every node's later RUN steps see the same times, so a step that packs copied files (a tar of
// the sources) makes the same bytes. The layer writer clamps times in the output anyway.
Status stamp_copied(const fs::path& upper, int64_t epoch) {
  const struct timespec times[2] = {{static_cast<time_t>(epoch), 0}, {static_cast<time_t>(epoch), 0}};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(upper, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (::utimensat(AT_FDCWD, it->path().c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return Status::from_errno("set the times of " + it->path().string(), errno);
    }
  }
  if (ec) return Status::io("list " + upper.string() + ": " + ec.message());
  return Status();
}

Status copy(Lowering& L, size_t stage, const Instruction& i) {
  StageState& s = L.stages[stage];
  CopyOp op = QR_TRY(copy_op(L, s, i));
  const StageState* from = nullptr;
  if (auto f = i.flag("from")) {
    std::string name = QR_TRY(substitute_word(*f, s.vars, L.cf.escape));
    from = QR_TRY(copy_source_stage(L, name, stage));
  }
  auto step = [&](const fs::path&, const fs::path& merged) -> Status {
    Fd root{::open(merged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (root.fd < 0) return Status::from_errno("open " + merged.string(), errno);
    if (!op.chown.empty()) op.owner = QR_TRY(resolve_chown(root.fd, op.chown));
    return from ? copy_from_stage(L, root.fd, op, *from) : copy_from_commit(L, root.fd, op);
  };
  fs::path upper = QR_TRY(in_stage_overlay(L, s, i, step));
  QR_RETURN_IF_ERROR(stamp_copied(upper, L.in.epoch));
  s.layers.push_back(upper);
  return Status();
}

// ---- the image ----

Status lower_stage(Lowering& L, size_t index) {
  const Stage& st = L.cf.stages[index];
  L.stages.push_back(QR_TRY(start_stage(L, st)));
  count_config(L.stages.back());
  for (const Instruction& i : st.instructions) {
    QR_RETURN_IF_ERROR(within(L, i, L.in.deadline.check()));
    StageState& s = L.stages[index];
    Status status;
    bool layer = i.kind == K::kRun || i.kind == K::kCopy || i.kind == K::kAdd;
    if (i.kind == K::kRun) {
      status = run(L, s, i);
    } else if (layer) {
      status = copy(L, index, i);
    } else {
      status = apply_metadata(L, s, i);
    }
    QR_RETURN_IF_ERROR(within(L, i, status));
    add_history(L, L.stages[index], i, !layer);
    QR_RETURN_IF_ERROR(within(L, i, check_config_bytes(L.stages[index])));
  }
  return Status();
}

Status write_layers(Lowering& L, const StageState& s, std::vector<normalize::Descriptor>& descriptors) {
  if (s.image) {
    for (const auto& l : s.image->layers) {
      auto desc = QR_TRY(copy_base_layer(L.in.layout, s.image->digest, l.media_type, l.digest, l.blob));
      descriptors.push_back(desc);
      size_t n = L.out.layers.size();
      const auto& ids = s.image->config["rootfs"]["diff_ids"];
      L.out.layers.push_back(
          {desc.digest, desc.size, desc.media_type, n < ids.size() ? ids[n].get<std::string>() : "", true});
    }
  }
  normalize::LayerOptions options;
  options.source_date_epoch = L.in.epoch;
  options.keep_owners = true;
  options.threads = L.in.options.threads;
  options.temp_dir = L.in.work;
  options.keep_going = [&] { return L.in.deadline.check(); };
  uint64_t bytes = 0;
  for (const auto& dir : s.layers) {
    normalize::CanonicalLayerWriter writer(options);
    QR_RETURN_IF_ERROR(add_upper_dir(dir, L.in.options.max_output_bytes, bytes, writer, options.keep_going));
    auto blob = QR_TRY(L.in.layout.begin_blob());
    auto summary = QR_TRY(writer.write(*blob));
    QR_RETURN_IF_ERROR(blob->finish());
    auto desc = QR_TRY(blob->commit(summary.media_type));
    descriptors.push_back(desc);
    L.out.layers.push_back({desc.digest, desc.size, desc.media_type, summary.diff_id, false});
  }
  return Status();
}

Status write_image(Lowering& L) {
  const StageState& s = L.stages.back();
  assert(s.config_bytes == json_bytes(s.config) + json_bytes(s.history));  // the accounting is exact
  std::vector<normalize::Descriptor> descriptors;
  QR_RETURN_IF_ERROR(write_layers(L, s, descriptors));
  json config_section = s.config;
  config_section["Labels"]["org.opencontainers.image.revision"] = L.in.source.commit_id();
  // A LABEL org.opencontainers.image.source in the Containerfile wins, as [image] source does in a recipe:
  // otherwise the label is --repo as given, and clones at other paths make other images.
  if (!config_section["Labels"].contains("org.opencontainers.image.source")) {
    config_section["Labels"]["org.opencontainers.image.source"] = L.in.options.repo;
  }
  json diff_ids = json::array();
  for (const auto& l : L.out.layers) diff_ids.push_back(l.diff_id);
  json config = {{"architecture", s.architecture},
                 {"os", s.os},
                 {"created", L.created},
                 {"config", config_section},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                 {"history", s.history}};
  auto config_bytes = QR_TRY(canonical_json(config, "image config"));
  // What the stage's instructions could not be refused for at their line: a FROM image's config near the
  // bound, the labels added here.
  if (config_bytes.size() > kMaxImageConfigBytes) {
    return Status::bad_input("the image config is " + std::to_string(config_bytes.size()) +
                             " bytes of canonical JSON, more than " + std::to_string(kMaxImageConfigBytes));
  }
  auto config_desc = QR_TRY(L.in.layout.add_blob(normalize::kMediaTypeConfig, config_bytes));
  auto manifest_bytes = QR_TRY(normalize::make_manifest(config_desc, descriptors));
  L.out.manifest = QR_TRY(L.in.layout.add_blob(normalize::kMediaTypeManifest, manifest_bytes));
  QR_RETURN_IF_ERROR(L.in.layout.write_index(L.out.manifest, L.out.tag));
  L.out.config_digest = config_desc.digest;
  L.out.os = s.os;
  L.out.architecture = s.architecture;
  return Status();
}

Status read_containerfile(Lowering& L) {
  auto text = L.in.source.read_path(L.in.recipe_path);
  if (!text.ok())
    return Status::not_found("Containerfile " + L.in.recipe_path + " not found in commit " + L.in.source.commit_id());
  L.cf = QR_TRY(parse_containerfile(*text, L.in.recipe_path, L.in.options.build_args));
  for (const std::string& name : {L.in.recipe_path + ".dockerignore", std::string(".dockerignore")}) {
    auto ignore = L.in.source.read_path(name);
    if (!ignore.ok()) continue;
    L.ignore.emplace(QR_TRY(DockerIgnore::parse(*ignore, name)));
    // Each path a COPY considers is matched against every pattern: bounded by the product, which depends on
    // the commit alone (a time limit would let honest nodes disagree). 20,000 patterns over 2,000 files took
    // 10 s; the bound is about a minute of matching, far above any real .dockerignore.
    constexpr uint64_t kMaxMatches = 100'000'000;
    const uint64_t entries = L.in.source.entries().size();
    if (L.ignore->size() * entries > kMaxMatches) {
      return Status::bad_input(name + ": " + std::to_string(L.ignore->size()) + " patterns over a tree of " +
                               std::to_string(entries) + " entries: more than " + std::to_string(kMaxMatches) +
                               " pattern matches, refused");
    }
    break;
  }
  return Status();
}

// The label that names the image when --name is not given: `NAME[:TAG]` (--tag wins over its tag).
constexpr char kRefNameLabel[] = "org.opencontainers.image.ref.name";

// --name and --tag, else the final stage's LABEL org.opencontainers.image.ref.name=NAME[:TAG] (after lowering:
// a label may use ARG values). usage when neither names the image; bad_input for a malformed name or tag.
Status name_image(Lowering& L) {
  L.out.name = L.in.options.image_name;
  L.out.tag = L.in.options.image_tag;
  std::string name_from = "--name", tag_from = "--tag";
  const json& config = L.stages.back().config;
  if (L.out.name.empty() && config.contains("Labels") && config["Labels"].is_object() &&
      config["Labels"].contains(kRefNameLabel) && config["Labels"][kRefNameLabel].is_string()) {
    std::string ref = config["Labels"][kRefNameLabel].get<std::string>();
    auto colon = ref.rfind(':');
    auto slash = ref.rfind('/');
    std::string label_tag;
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
      label_tag = ref.substr(colon + 1);
      ref = ref.substr(0, colon);
    }
    L.out.name = ref;
    name_from = std::string("LABEL ") + kRefNameLabel;
    if (L.out.tag.empty() && !label_tag.empty()) {
      L.out.tag = label_tag;
      tag_from = name_from;
    }
  }
  if (L.out.tag.empty()) L.out.tag = "latest";
  if (L.out.name.empty()) {
    return Status::usage(std::string("a Containerfile does not name its image: pass --name NAME or set LABEL ") +
                         kRefNameLabel + "=NAME[:TAG] in its final stage");
  }
  QR_RETURN_IF_ERROR(check_image_name(L.out.name, name_from));
  return check_image_tag(L.out.tag, tag_from);
}

}  // namespace

Result<ContainerfileImage> build_containerfile(const ContainerfileInputs& in) {
  Lowering L{in, {}, {}, {}, {}, {}, {}, 0, false, format_rfc3339(in.epoch)};
  if (!in.options.image_name.empty()) QR_RETURN_IF_ERROR(check_image_name(in.options.image_name, "--name"));
  if (!in.options.image_tag.empty()) QR_RETURN_IF_ERROR(check_image_tag(in.options.image_tag, "--tag"));
  QR_RETURN_IF_ERROR(read_containerfile(L));
  for (size_t i = 0; i < L.cf.stages.size(); ++i) QR_RETURN_IF_ERROR(lower_stage(L, i));
  QR_RETURN_IF_ERROR(name_image(L));
  QR_RETURN_IF_ERROR(write_image(L));
  return std::move(L.out);
}

}  // namespace quorate::builder
