// The roster of trusted node keys (TOML [[nodes]]) and verification of attestations against it.
#include "quorate/attest/roster.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <toml++/toml.h>

#include "quorate/attest/bundle.h"
#include "quorate/config/toml_file.h"
#include "quorate/core/file.h"
#include "quorate/core/time.h"

namespace quorate::attest {

const char* failure_name(Failure f) {
  switch (f) {
    case Failure::kNone:
      return "ok";
    case Failure::kMalformed:
      return "malformed";
    case Failure::kWrongPayloadType:
      return "wrong payload type";
    case Failure::kWrongStatement:
      return "wrong statement type";
    case Failure::kUnknownKey:
      return "unknown key";
    case Failure::kBadSignature:
      return "bad signature";
    case Failure::kNotYetValid:
      return "not yet valid";
    case Failure::kExpired:
      return "expired";
    case Failure::kRevoked:
      return "revoked";
    case Failure::kNodeMismatch:
      return "node mismatch";
    case Failure::kNotPublisher:
      return "signer is not the publishing node";
  }
  return "unknown";
}

// ---- loading -------------------------------------------------------------------------------------------

namespace {

constexpr uint64_t kMaxRosterBytes = 4u << 20;

Result<std::optional<int64_t>> node_time(const toml::table& node, const char* key, const std::string& where) {
  const toml::node* v = node.get(key);
  if (v == nullptr) return std::optional<int64_t>();
  std::string text;
  if (auto s = v->value<std::string>()) {
    text = *s;
  } else if (v->is_date_time()) {
    std::ostringstream os;
    os << *v->as_date_time();
    text = os.str();
  } else {
    return Status::bad_input(where + ": " + key + " is not an RFC 3339 time");
  }
  auto t = parse_rfc3339(text);
  if (!t.ok()) return Status::bad_input(where + ": " + key + ": " + t.status().message());
  return std::optional<int64_t>(*t);
}

Result<RosterEntry> parse_node(const toml::table& node, const std::filesystem::path& origin, const std::string& where) {
  for (const auto& [k, v] : node) {
    std::string_view key = k.str();
    if (key != "id" && key != "public_key" && key != "not_before" && key != "not_after" && key != "revoked_at") {
      return Status::bad_input(where + ": unknown key '" + std::string(key) + "'");
    }
  }
  auto id = node["id"].value<std::string>();
  if (!id || id->empty()) return Status::bad_input(where + ": missing or empty 'id'");
  std::string who = where + " (id " + *id + ")";
  auto pk = node["public_key"].value<std::string>();
  if (!pk) return Status::bad_input(who + ": missing 'public_key' (PEM text or a file path)");
  auto key = QR_TRY([&]() -> Result<PublicKey> {
    if (pk->find("-----BEGIN") != std::string::npos) {
      auto k = PublicKey::from_pem(*pk);
      if (!k.ok()) return k.status().with_context(who + ": public_key");
      return k;
    }
    auto k = PublicKey::load_named(origin.parent_path() / *pk);
    if (!k.ok()) return k.status().with_context(who + ": public_key");
    return k;
  }());
  RosterEntry e{*id, std::move(key), {}, {}, {}};
  e.not_before = QR_TRY(node_time(node, "not_before", who));
  e.not_after = QR_TRY(node_time(node, "not_after", who));
  e.revoked_at = QR_TRY(node_time(node, "revoked_at", who));
  return e;
}

// The [[nodes]] tables of a parsed document.
Result<std::vector<RosterEntry>> nodes_of(const toml::table& doc, const std::filesystem::path& origin) {
  std::vector<RosterEntry> out;
  const toml::node* nodes = doc.get("nodes");
  if (nodes == nullptr) return out;
  const toml::array* arr = nodes->as_array();
  if (arr == nullptr) return Status::bad_input(origin.string() + ": 'nodes' must be an array of tables ([[nodes]])");
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = (*arr)[i].as_table();
    std::string where =
        origin.string() + ":" + std::to_string((*arr)[i].source().begin.line) + ": nodes[" + std::to_string(i) + "]";
    if (t == nullptr) return Status::bad_input(where + ": not a table");
    out.push_back(QR_TRY(parse_node(*t, origin, where)));
  }
  return out;
}

}  // namespace

Result<std::vector<RosterEntry>> parse_roster_nodes(std::string_view toml_text, const std::filesystem::path& origin) {
  auto doc = QR_TRY(config::parse_toml(toml_text, origin.string()));
  return nodes_of(doc, origin);
}

Result<std::vector<RosterEntry>> roster_or_policy_entries(std::string_view toml_text,
                                                          const std::filesystem::path& origin) {
  auto doc = QR_TRY(config::parse_toml(toml_text, origin.string()));
  auto entries = QR_TRY(nodes_of(doc, origin));
  if (const toml::node* n = doc.get("roster")) {
    std::string where = origin.string() + ":" + std::to_string(n->source().begin.line);
    if (!n->is_string()) return Status::bad_input(where + ": 'roster' must be a file path");
    std::filesystem::path p(n->as_string()->get());
    if (!p.is_absolute()) p = origin.parent_path() / p;
    // Named by the file, not by whoever runs quorate: a FIFO or a device there is refused, never opened.
    auto text = read_regular_file(p, kMaxRosterBytes);
    if (!text.ok()) return text.status().with_context(where + ": roster");
    auto more = parse_roster_nodes(*text, p);
    if (!more.ok()) return more.status().with_context(where + ": roster");
    entries.insert(entries.end(), more->begin(), more->end());
  }
  return entries;
}

Result<Roster> Roster::create(std::vector<RosterEntry> entries) {
  for (const auto& e : entries) {
    if (e.node_id.empty()) return Status::bad_input("roster: a node id is empty");
  }
  Roster r;
  r.entries_ = std::move(entries);
  return r;
}

Result<Roster> Roster::load(const std::filesystem::path& path) {
  auto text = QR_TRY(read_file(path, kMaxRosterBytes));
  return create(QR_TRY(parse_roster_nodes(text, path)));
}

std::vector<const RosterEntry*> Roster::find(std::string_view keyid) const {
  std::vector<const RosterEntry*> out;
  for (const auto& e : entries_) {
    if (e.key.keyid() == keyid) out.push_back(&e);
  }
  return out;
}

// ---- verification --------------------------------------------------------------------------------------

namespace {

Verdict fail(Failure f, Status s) {
  Verdict v;
  v.failure = f;
  v.status = std::move(s);
  return v;
}

// Parses the envelope or bundle and checks the payload type: the steps before any key is involved.
Result<Envelope> open_envelope(std::string_view bytes, Verdict& verdict) {
  auto env = parse_envelope_or_bundle(bytes);
  if (!env.ok()) {
    verdict = fail(Failure::kMalformed, env.status());
    return env.status();
  }
  if (env->payload_type != kInTotoPayloadType) {
    verdict = fail(Failure::kWrongPayloadType, Status::verification("wrong payload type '" + env->payload_type +
                                                                    "': expected " + std::string(kInTotoPayloadType)));
    return verdict.status;
  }
  return env;
}

// The statement of an envelope whose signature verified.
Verdict finish(Envelope env, std::string keyid, std::string node_id, Result<Statement> statement) {
  if (!statement.ok()) {
    return fail(statement.status().is_verification() ? Failure::kWrongStatement : Failure::kMalformed,
                statement.status());
  }
  Verdict v;
  if (node_id.empty()) node_id = statement->builder_id;
  v.attestation = Attestation{std::move(env), std::move(statement).value(), std::move(keyid), std::move(node_id)};
  return v;
}

// The key verified but the statement names another node than the roster lists it under: say both ids and how
// the attestation should have been made (a node id given to `quorate attest`, or derived from the key's name).
std::string node_mismatch_message(const std::string& builder, const std::string& keyid,
                                  const std::set<std::string>& listed_under) {
  std::string ids;
  for (const auto& id : listed_under) ids += (ids.empty() ? "'" : ", '") + id + "'";
  return "node mismatch: the statement names node '" + builder + "', but the roster lists the signing key " + keyid +
         " under node " + ids + " (expected node id " + ids + ", found '" + builder + "'; sign with --node-id " +
         *listed_under.begin() + ", or list the key under '" + builder + "' in the policy)";
}

}  // namespace

Failure key_validity(const std::vector<KeyWindow>& windows, int64_t t) {
  if (windows.empty()) return Failure::kUnknownKey;
  for (const auto& w : windows) {
    if (w.revoked_at && t >= *w.revoked_at) return Failure::kRevoked;
  }
  Failure first = Failure::kNone;
  for (const auto& w : windows) {
    Failure f = Failure::kNone;
    if (w.not_before && t < *w.not_before) f = Failure::kNotYetValid;
    if (w.not_after && t > *w.not_after) f = Failure::kExpired;
    if (f == Failure::kNone) return f;
    if (first == Failure::kNone) first = f;
  }
  return first;
}

Verdict Roster::verify(std::string_view bytes, std::optional<int64_t> at) const {
  Verdict verdict;
  auto env = open_envelope(bytes, verdict);
  if (!env.ok()) return verdict;
  std::string message = pae(env->payload_type, env->payload);
  // At most kMaxSignatures + (distinct roster keys) verifications, whatever the envelope holds. A keyid is
  // the digest of one key, so a signature naming one is verified once, however many entries list that key. A
  // signature without a keyid is tried with each distinct key of the roster, and only the first such signature:
  // each further one would cost as many verifications again.
  const RosterEntry* signer = nullptr;
  std::string bad_keyid, unknown_keyid;
  bool keyless_tried = false;
  for (const auto& sig : env->signatures) {
    if (!sig.keyid.empty()) {
      std::vector<const RosterEntry*> candidates = find(sig.keyid);
      if (candidates.empty()) {
        unknown_keyid = sig.keyid;
      } else if (candidates.front()->key.verify(message, sig.sig).ok()) {
        signer = candidates.front();
        break;
      } else {
        bad_keyid = sig.keyid;
      }
      continue;
    }
    if (keyless_tried) continue;
    keyless_tried = true;
    std::set<std::string> tried;
    for (const auto& e : entries_) {
      if (!tried.insert(e.key.keyid()).second) continue;
      if (e.key.verify(message, sig.sig).ok()) {
        signer = &e;
        break;
      }
    }
    if (signer != nullptr) break;
  }
  if (signer == nullptr) {
    if (!bad_keyid.empty()) {
      return fail(Failure::kBadSignature,
                  Status::verification("bad signature: the signature does not verify with key " + bad_keyid));
    }
    return fail(Failure::kUnknownKey,
                Status::verification("unknown key: no signature names a key of the roster" +
                                     (unknown_keyid.empty() ? std::string() : " (keyid " + unknown_keyid + ")")));
  }
  std::string keyid = signer->key.keyid();
  auto statement = parse_statement(env->payload);
  if (!statement.ok()) return finish(std::move(env).value(), keyid, {}, std::move(statement));
  int64_t t = at.value_or(statement->finished_on);
  std::vector<KeyWindow> windows;
  bool listed = false;
  std::set<std::string> listed_under;  // sorted: the message does not depend on the roster's order
  for (const RosterEntry* e : find(keyid)) {
    windows.push_back(e->window());
    listed = listed || e->node_id == statement->builder_id;
    listed_under.insert(e->node_id);
  }
  Failure valid = listed ? key_validity(windows, t) : Failure::kNodeMismatch;
  if (valid != Failure::kNone) {
    // The signature verified: the attestation is kept beside the failure, for a caller that reports what the
    // key signed (the engine voids such a vote with this reason).
    std::string what = valid == Failure::kNodeMismatch
                           ? node_mismatch_message(statement->builder_id, keyid, listed_under)
                           : std::string(failure_name(valid)) + ": key " + keyid + " of node '" +
                                 statement->builder_id + "' is " + failure_name(valid) + " at " + format_rfc3339(t);
    std::string node_id = statement->builder_id;
    Verdict v = finish(std::move(env).value(), keyid, node_id, std::move(statement));
    v.failure = valid;
    v.status = Status::verification(what);
    return v;
  }
  std::string node_id = statement->builder_id;
  return finish(std::move(env).value(), keyid, node_id, std::move(statement));
}

Verdict verify_with_key(std::string_view bytes, const PublicKey& key) {
  Verdict verdict;
  auto env = open_envelope(bytes, verdict);
  if (!env.ok()) return verdict;
  Status s = verify_envelope_signature(*env, key);
  if (!s.ok()) return fail(Failure::kBadSignature, Status::verification("bad signature: " + s.message()));
  auto statement = parse_statement(env->payload);
  return finish(std::move(env).value(), key.keyid(), {}, std::move(statement));
}

}  // namespace quorate::attest

namespace quorate::attest {

Result<std::vector<RosterEntry>> load_roster_or_policy(const std::filesystem::path& path) {
  auto text = QR_TRY(read_file(path, kMaxRosterBytes));
  return roster_or_policy_entries(text, path);
}

namespace {

// Node ids that read alike are distinct voters: a new key listed under "n\u043ede-a" (a Cyrillic o) or "Node-A"
// reads as a rotation of node-a's key in a review of the roster, and is a second vote. Each id holding a byte
// outside printable ASCII is named with that byte, and ids that differ only in ASCII case are named together.
std::vector<std::string> look_alike_warnings(const std::map<std::string, bool>& node_ids) {
  std::vector<std::string> out;
  std::map<std::string, std::vector<std::string>> by_folded;
  for (const auto& [id, _] : node_ids) {
    std::string folded;
    for (char c : id) folded += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    by_folded[folded].push_back(id);
    for (size_t i = 0; i < id.size(); ++i) {
      const auto b = static_cast<unsigned char>(id[i]);
      if (b >= 0x21 && b <= 0x7e) continue;
      static constexpr char kHex[] = "0123456789abcdef";
      out.push_back("node id '" + id + "' holds a byte outside printable ASCII (0x" + kHex[b >> 4] + kHex[b & 15] +
                    " at offset " + std::to_string(i) +
                    "): it may read as another node's id, and with a key of its own it is a voter of its own");
      break;
    }
  }
  for (const auto& [_, ids] : by_folded) {
    if (ids.size() < 2) continue;
    std::string names;
    for (const auto& id : ids) names += (names.empty() ? "'" : ", '") + id + "'";
    out.push_back("node ids " + names +
                  " differ only in case: they read alike, and with keys of their own they are voters of their own");
  }
  return out;
}

}  // namespace

RosterCheck check_roster(const std::vector<RosterEntry>& entries, int64_t now, int64_t within) {
  RosterCheck out;
  std::vector<const RosterEntry*> sorted;
  for (const auto& e : entries) sorted.push_back(&e);
  std::stable_sort(sorted.begin(), sorted.end(), [](const RosterEntry* a, const RosterEntry* b) {
    return std::tie(a->node_id, a->not_before, a->key.keyid()) < std::tie(b->node_id, b->not_before, b->key.keyid());
  });
  // The windows of each key over every entry listing it: key_validity, the one rule, judges it.
  std::map<std::string, std::vector<KeyWindow>> windows;
  std::map<std::string, std::set<std::string>> ids_of_key;
  for (const auto& e : entries) {
    windows[e.key.keyid()].push_back(e.window());
    ids_of_key[e.key.keyid()].insert(e.node_id);
  }
  auto opt = [](const char* name, const std::optional<int64_t>& t) {
    return t ? std::string(" ") + name + "=" + format_rfc3339(*t) : std::string();
  };
  std::map<std::string, bool> node_valid_now;
  for (const RosterEntry* e : sorted) {
    const std::string& keyid = e->key.keyid();
    Failure now_state = key_validity(windows[keyid], now);
    bool valid = now_state == Failure::kNone && key_validity({e->window()}, now) == Failure::kNone;
    node_valid_now[e->node_id] = node_valid_now[e->node_id] || valid;
    std::string state =
        valid ? "valid" : failure_name(now_state == Failure::kNone ? key_validity({e->window()}, now) : now_state);
    out.lines.push_back(e->node_id + "  " + keyid + "  " + key_type_name(e->key.type()) + "  " + state +
                        opt("not_before", e->not_before) + opt("not_after", e->not_after) +
                        opt("revoked_at", e->revoked_at));
    if (valid) {
      std::optional<int64_t> end = e->not_after;
      if (e->revoked_at && (!end || *e->revoked_at < *end)) end = e->revoked_at;
      if (end && *end - now <= within) {
        out.warnings.push_back("node '" + e->node_id + "': key " + keyid + " stops being valid at " +
                               format_rfc3339(*end) + ", within " + std::to_string(within) + "s");
      }
    }
  }
  for (const auto& [node, valid] : node_valid_now) {
    if (!valid)
      out.warnings.push_back("node '" + node + "' has no key valid at " + format_rfc3339(now) +
                             ": its votes count for nothing");
  }
  for (const auto& w : look_alike_warnings(node_valid_now)) out.warnings.push_back(w);
  for (const auto& [keyid, ids] : ids_of_key) {
    if (ids.size() > 1) {
      std::string names;
      for (const auto& id : ids) names += (names.empty() ? "'" : ", '") + id + "'";
      out.warnings.push_back("key " + keyid + " is listed under node ids " + names +
                             ": they count as one voter, and a key should belong to one node");
    }
  }
  return out;
}

}  // namespace quorate::attest
