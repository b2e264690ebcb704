// Decider: pinned digests, the namespace's policy, quorum::answer over a read-only store or over the verifier
// daemon's decisions.
#include "quorate/gate/decider.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "quorate/config/toml_file.h"
#include "quorate/quorum/query.h"
#include "quorate/quorum/verified_votes.h"
#include "quorate/quorum/verifier.h"
#include "quorate/quorumd/quorum_judge.h"
#include "quorate/wire/query_client.h"

namespace quorate::gate {

Result<GateConfig> load_gate_config(const std::filesystem::path& path) {
  auto f = QR_TRY(config::TomlFile::read(path));
  QR_RETURN_IF_ERROR(f.check_keys(f.root(), "", {"namespaces"}));
  GateConfig c;
  const toml::node* list = f.root().get("namespaces");
  if (!list) return c;
  const toml::array* rules = list->as_array();
  if (!rules) return Status::bad_input(f.where(*list) + ": 'namespaces' must be an array of tables ([[namespaces]])");
  std::set<std::string> seen;
  for (const auto& node : *rules) {
    const toml::table* t = node.as_table();
    if (!t) return Status::bad_input(f.where(node) + ": each [[namespaces]] entry must be a table");
    QR_RETURN_IF_ERROR(f.check_keys(*t, "namespaces.", {"name", "exclude", "policy"}));
    NamespaceRule r;
    r.name = QR_TRY(f.string(*t, "name", "namespaces.", true));
    r.exclude = QR_TRY(f.boolean(*t, "exclude", "namespaces.", false));
    r.policy = f.resolve(QR_TRY(f.string(*t, "policy", "namespaces.", false)));
    if (r.name.empty()) return Status::bad_input(f.where(*t) + ": namespaces.name is empty");
    if (!seen.insert(r.name).second) return Status::bad_input(f.where(*t) + ": namespace '" + r.name + "' given twice");
    if (r.exclude && !r.policy.empty()) {
      return Status::bad_input(f.where(*t) + ": namespace '" + r.name + "' both excluded and given a policy");
    }
    c.namespaces.push_back(std::move(r));
  }
  return c;
}

struct Decider::Impl {
  DeciderOptions options;
  std::vector<std::unique_ptr<quorum::Verifier>> verifiers;  // [0]: the default policy
  std::map<std::string, int> namespace_policy;               // namespace -> index into verifiers; -1 excluded
  std::mutex mu;
  // The open store, the identity of the file it was opened from, and one cache of verified votes per policy.
  std::unique_ptr<quorum::Store> store;
  dev_t dev = 0;
  ino_t ino = 0;
  std::vector<std::unique_ptr<quorum::VerifiedVotes>> votes;
  std::unique_ptr<wire::QueryClient> client;  // --quorum: the verifier's query socket

  void close_store() {
    votes.clear();
    store.reset();
  }

  // The store as the file at its path is now; reopened when that file was replaced.
  Status current_store() {
    struct stat st {};
    if (::stat(options.store.c_str(), &st) != 0) {
      close_store();
      return Status::io(options.store.string() + ": cannot be read");
    }
    if (store && st.st_dev == dev && st.st_ino == ino) return Status();
    close_store();
    store = QR_TRY(quorum::Store::open_read_only(options.store));
    dev = st.st_dev;
    ino = st.st_ino;
    for (const auto& v : verifiers) votes.push_back(std::make_unique<quorum::VerifiedVotes>(*store, *v));
    return Status();
  }
};

Decider::Decider(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Decider::~Decider() = default;

Result<std::unique_ptr<Decider>> Decider::open(DeciderOptions options) {
  auto impl = std::make_unique<Impl>();
  std::map<std::filesystem::path, int> loaded;
  auto load = [&](const std::filesystem::path& p) -> Result<int> {
    auto it = loaded.find(p);
    if (it != loaded.end()) return it->second;
    auto v = QR_TRY(quorum::Verifier::load(p));
    impl->verifiers.push_back(std::make_unique<quorum::Verifier>(std::move(v)));
    int index = static_cast<int>(impl->verifiers.size()) - 1;
    loaded[p] = index;
    return index;
  };
  QR_TRY(load(options.policy));
  for (const auto& r : options.config.namespaces) {
    impl->namespace_policy[r.name] = r.exclude ? -1 : r.policy.empty() ? 0 : QR_TRY(load(r.policy));
  }
  if (options.store.empty() == !options.quorum.has_value()) {
    return Status::usage("the gate decides from either a store or the verifier's query socket: give exactly one");
  }
  if (options.quorum) {
    // The verifier decides under its own policy only, and its decisions count only under the policy they were
    // made under: a namespace judged under another one would have every image denied.
    for (const auto& r : options.config.namespaces) {
      const auto& verifier = impl->verifiers[static_cast<size_t>(std::max(0, impl->namespace_policy[r.name]))];
      if (verifier->policy().digest() == impl->verifiers[0]->policy().digest()) continue;
      return Status::usage("namespace '" + r.name + "' has its own policy " + r.policy.string() +
                           " (--config): with --quorum the verifier answers under its own policy only (--policy), "
                           "so every image of '" +
                           r.name + "' would be denied; a stricter policy needs --store");
    }
  }
  impl->options = std::move(options);
  if (impl->options.quorum) {
    if (impl->options.quorum->timeout_ms <= 0) return Status::usage("the verifier timeout must be positive");
    impl->client = QR_TRY(wire::QueryClient::connect(impl->options.quorum->endpoint, impl->options.quorum->security));
  } else {
    QR_RETURN_IF_ERROR(impl->current_store());
  }
  return std::unique_ptr<Decider>(new Decider(std::move(impl)));
}

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Why an image the engine did not accept is refused, from the decisions of its subject keys.
std::string why_not(const quorum::Answer& a, const std::string& digest) {
  if (a.decisions.empty()) return "no decision: nothing attested for " + digest;
  std::vector<std::string> parts;
  for (const auto& d : a.decisions) {
    std::string s = d.subject.to_string() + ": ";
    if (d.accepted) {
      s += "the quorum accepted " + d.digest + ", not this image";
    } else {
      s += "rejected: " + d.reason;
      if (!d.missing.empty()) s += "; missing nodes: " + join(d.missing);
    }
    parts.push_back(std::move(s));
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " | ") + p;
  return out;
}

}  // namespace

Verdict Decider::decide(const Review& review) {
  Impl& m = *impl_;
  Verdict v;
  int policy = 0;
  if (auto it = m.namespace_policy.find(review.namespace_); it != m.namespace_policy.end()) policy = it->second;
  if (policy < 0) {
    v.allowed = true;
    v.excluded = true;
    for (const auto& ref : review.images) v.images.push_back({ref.where, ref.image, true, "namespace excluded"});
    return v;
  }
  std::lock_guard lock(m.mu);
  const quorum::Policy& chosen = m.verifiers[static_cast<size_t>(policy)]->policy();
  std::optional<Status> source_status;  // the store opened (or found unusable) once per review; the verifier silent
  const int64_t now = m.options.clock_s();
  std::vector<std::string> denials;
  auto fail_closed = [](const Status& s) { return "cannot be checked, denied (fail closed): " + s.to_string(); };
  // The engine's answer for one digest, from the store's votes or from the verifier's decisions.
  auto ask = [&](const std::string& digest) -> Result<quorum::Answer> {
    quorum::Question q{digest, {}, {}};
    if (!m.client) {
      if (!source_status) source_status = m.current_store();
      if (!source_status->ok()) return *source_status;
      auto a = quorum::answer(chosen, *m.votes[static_cast<size_t>(policy)], q, now);
      (void)m.votes[static_cast<size_t>(policy)]->take_distrusted();
      if (!a.ok()) {
        source_status = a.status();
        m.close_store();  // reopened at the next review
      }
      return a;
    }
    if (source_status && !source_status->ok()) return *source_status;
    wire::pb::Query query;
    query.set_image_digest(digest);
    auto got = m.client->ask(query, m.options.quorum->timeout_ms);
    if (!got.ok()) {
      if (!got.status().is_bad_input()) source_status = got.status();  // silent: not asked again in this review
      return got.status();
    }
    if (!got->error().empty()) return Status::bad_input("the verifier refused the query: " + got->error());
    std::vector<quorum::Decision> decisions;
    for (const auto& d : got->decisions()) {
      if (d.policy_digest() != chosen.digest()) {
        return Status::verification("the verifier decided under policy " + d.policy_digest() +
                                    ", this namespace requires " + chosen.digest() +
                                    " (the gate's policy file must be the verifier's)");
      }
      decisions.push_back(quorum::from_wire(d));
    }
    return quorum::answer_from_decisions(chosen, std::move(decisions), q);
  };
  for (const auto& ref : review.images) {
    ImageVerdict iv{ref.where, ref.image, false, ""};
    auto digest = pinned_digest(ref.image);
    if (!digest.ok()) {
      iv.why = "not pinned by digest (NAME@sha256:HEX)";
    } else {
      auto answer = ask(*digest);
      if (!answer.ok()) {
        iv.why = fail_closed(answer.status());
      } else if (answer->yes) {
        iv.allowed = true;
        iv.why = answer->summary;
      } else {
        iv.why = why_not(*answer, *digest);
      }
    }
    if (!iv.allowed) denials.push_back(ref.image + " (" + ref.where + "): " + iv.why);
    v.images.push_back(std::move(iv));
  }
  v.allowed = denials.empty();
  if (!v.allowed) {
    v.message = "quorate gate: " + std::to_string(denials.size()) + " of " + std::to_string(review.images.size()) +
                " image(s) not accepted by the quorum: ";
    for (size_t i = 0; i < denials.size(); ++i) v.message += (i ? "; " : "") + denials[i];
  }
  return v;
}

}  // namespace quorate::gate
