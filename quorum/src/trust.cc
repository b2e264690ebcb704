// Trust: roster entries grouped into voters by shared node id or keyid (a small union-find).
#include "quorate/quorum/trust.h"

#include <algorithm>
#include <numeric>

#include "quorate/attest/roster.h"
#include "quorate/core/encoding.h"

namespace quorate::quorum {
namespace {

size_t find_root(std::vector<size_t>& parent, size_t i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

}  // namespace

const char* key_validity_name(KeyValidity v) {
  switch (v) {
    case KeyValidity::kValid:
      return "valid";
    case KeyValidity::kUnknown:
      return "unknown key";
    case KeyValidity::kNotYetValid:
      return "key not yet valid";
    case KeyValidity::kExpired:
      return "key expired";
    case KeyValidity::kRevoked:
      return "key revoked";
  }
  return "?";
}

Result<Trust> Trust::create(std::vector<TrustedKey> keys) {
  for (const auto& k : keys) {
    if (k.node_id.empty()) return Status::bad_input("roster: a node has an empty id");
    if (!is_lower_hex(k.keyid, 64)) {
      return Status::bad_input("roster: node '" + k.node_id + "': keyid is not 64 lowercase hex: '" + k.keyid + "'");
    }
  }
  std::sort(keys.begin(), keys.end(), [](const TrustedKey& a, const TrustedKey& b) {
    return std::tie(a.node_id, a.keyid) < std::tie(b.node_id, b.keyid);
  });
  // Entries sharing a node id or a keyid are one voter.
  std::vector<size_t> parent(keys.size());
  std::iota(parent.begin(), parent.end(), 0);
  std::map<std::string, size_t> first_of_node, first_of_key;
  for (size_t i = 0; i < keys.size(); ++i) {
    for (auto* index : {&first_of_node, &first_of_key}) {
      const std::string& name = index == &first_of_node ? keys[i].node_id : keys[i].keyid;
      auto [it, fresh] = index->emplace(name, i);
      if (!fresh) parent[find_root(parent, i)] = find_root(parent, it->second);
    }
  }
  // Keys are sorted by node id, so the smallest node id of a group is the first entry met for its root.
  std::map<size_t, std::string> name_of_root;
  for (size_t i = 0; i < keys.size(); ++i) name_of_root.emplace(find_root(parent, i), keys[i].node_id);
  Trust t;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string& voter = name_of_root[find_root(parent, i)];
    t.voter_by_node_[keys[i].node_id] = voter;
    t.voter_by_key_[keys[i].keyid] = voter;
  }
  for (const auto& [root, name] : name_of_root) t.voters_.push_back(name);
  std::sort(t.voters_.begin(), t.voters_.end());
  t.keys_ = std::move(keys);
  return t;
}

std::optional<std::string> Trust::voter_of_node(const std::string& node_id) const {
  auto it = voter_by_node_.find(node_id);
  if (it == voter_by_node_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Trust::voter_of_key(const std::string& keyid) const {
  auto it = voter_by_key_.find(keyid);
  if (it == voter_by_key_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Trust::node_ids_of(const std::string& voter) const {
  std::vector<std::string> out;
  for (const auto& [node, v] : voter_by_node_) {
    if (v == voter) out.push_back(node);
  }
  return out;
}

bool Trust::lists(const std::string& node_id, const std::string& keyid) const {
  return std::any_of(keys_.begin(), keys_.end(),
                     [&](const TrustedKey& k) { return k.node_id == node_id && k.keyid == keyid; });
}

KeyValidity Trust::validity(const std::string& keyid, int64_t t) const {
  std::vector<attest::KeyWindow> windows;
  for (const auto& k : keys_) {
    if (k.keyid == keyid) windows.push_back({k.not_before, k.not_after, k.revoked_at});
  }
  switch (attest::key_validity(windows, t)) {
    case attest::Failure::kNone:
      return KeyValidity::kValid;
    case attest::Failure::kRevoked:
      return KeyValidity::kRevoked;
    case attest::Failure::kExpired:
      return KeyValidity::kExpired;
    case attest::Failure::kNotYetValid:
      return KeyValidity::kNotYetValid;
    default:
      return KeyValidity::kUnknown;
  }
}

}  // namespace quorate::quorum
