// Test helpers for real attestations: Ed25519 node keys, signed build results, policy files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "support/test_util.h"

namespace quorate::quorum::testing {

inline constexpr int64_t kSigned = 1'790'000'000;  // 2026-09-21, when the test attestations are signed
inline constexpr const char* kRepo = "https://git.example/app.git";

struct Node {
  std::string id;
  attest::KeyPair pair;
  std::shared_ptr<attest::Signer> signer;
};

inline Node make_node(const std::string& id) {
  Node n;
  n.id = id;
  n.pair = attest::generate_key(attest::KeyType::kEd25519).value();
  n.signer = attest::signer_from_pem(n.pair.private_pem).value();
  return n;
}

inline std::vector<Node> make_nodes(const std::vector<std::string>& ids) {
  std::vector<Node> out;
  for (const auto& id : ids) out.push_back(make_node(id));
  return out;
}

// A 40-hex commit id derived from a word.
inline std::string commit_of(const std::string& word) { return sha256_hex("commit:" + word).substr(0, 40); }
inline std::string image_of(const std::string& word) { return sha256_digest("manifest:" + word); }
inline std::string config_of(const std::string& word) { return sha256_digest("config:" + word); }

// The build result a node would write for `commit`, producing manifest `image` and config `content`.
inline std::string build_result(const std::string& commit, const std::string& image, const std::string& content,
                                int64_t finished_on, const nlohmann::json& build_args = nullptr) {
  nlohmann::json r = {{"schema", "https://quorate.dev/build-result/v1"},
                      {"canonical_form", 1},
                      {"image",
                       {{"name", "registry.example/app"},
                        {"manifest_digest", image},
                        {"config_digest", content},
                        {"diff_ids", {sha256_digest("layer:" + content)}},
                        {"layers", nlohmann::json::array()}}},
                      {"source", {{"uri", kRepo}, {"commit", commit}, {"recipe_path", "quorate.toml"}}},
                      {"base_images", nlohmann::json::array()},
                      {"platform", {{"os", "linux"}, {"architecture", "amd64"}}},
                      {"source_date_epoch", 1700000000},
                      {"compressor", "gzip zlib 1.2.13 level 6"},
                      {"started_on", format_rfc3339(finished_on - 30)},
                      {"finished_on", format_rfc3339(finished_on)}};
  if (!build_args.is_null()) {  // a Containerfile build's --build-arg values
    r["source"]["recipe_path"] = "Containerfile";
    r["source"]["recipe_kind"] = "containerfile";
    r["build_args"] = build_args;
  }
  return r.dump();
}

// An attestation by `node` that commit `commit_word` rebuilt to image `image_word` (config `content_word`,
// default: the same word).
inline std::string attestation(const Node& node, const std::string& commit_word, const std::string& image_word,
                               const std::string& content_word = "", int64_t finished_on = kSigned,
                               attest::AttestFormat format = attest::AttestFormat::kEnvelope) {
  auto bytes = attest::attest_build_result(
      build_result(commit_of(commit_word), image_of(image_word),
                   config_of(content_word.empty() ? image_word : content_word), finished_on),
      *node.signer, node.id, format);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  return bytes.ok() ? bytes.value() : std::string();
}

// The same for a Containerfile build given `build_args` (an object of NAME: VALUE).
inline std::string attestation_with_args(const Node& node, const std::string& commit_word,
                                         const std::string& image_word, const nlohmann::json& build_args) {
  auto bytes = attest::attest_build_result(
      build_result(commit_of(commit_word), image_of(image_word), config_of(image_word), kSigned, build_args),
      *node.signer, node.id, attest::AttestFormat::kEnvelope);
  EXPECT_TRUE(bytes.ok()) << bytes.status().to_string();
  return bytes.ok() ? bytes.value() : std::string();
}

struct NodeWindow {
  std::string not_before, not_after, revoked_at;  // RFC 3339 or empty
};

// A policy file in `dir` with `header` (threshold and friends) and one [[nodes]] table per node, the public key
// written next to it as a file.
inline std::filesystem::path write_policy(const std::filesystem::path& dir, const std::string& header,
                                          const std::vector<Node>& nodes, const std::vector<NodeWindow>& windows = {}) {
  std::string text = header + "\n";
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto pem = dir / (nodes[i].id + ".pub.pem");
    quorate::testing::spit(pem, nodes[i].pair.public_pem);
    text += "[[nodes]]\nid = \"" + nodes[i].id + "\"\npublic_key = \"" + pem.filename().string() + "\"\n";
    if (i < windows.size()) {
      if (!windows[i].not_before.empty()) text += "not_before = \"" + windows[i].not_before + "\"\n";
      if (!windows[i].not_after.empty()) text += "not_after = \"" + windows[i].not_after + "\"\n";
      if (!windows[i].revoked_at.empty()) text += "revoked_at = \"" + windows[i].revoked_at + "\"\n";
    }
  }
  auto path = dir / "policy.toml";
  quorate::testing::spit(path, text);
  return path;
}

}  // namespace quorate::quorum::testing
