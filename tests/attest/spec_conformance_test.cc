// Field-by-field checks of what quorate signs against the published specs (no maintained checker is packaged
// in Debian 12): the in-toto Statement v1 and ResourceDescriptor, SLSA Provenance v1, the DSSE envelope and the
// Sigstore bundle v0.3. Issue 18: builder.id was a bare node id, resolvedDependencies[].uri was "git+hello",
// and the compressor byproduct had none of uri, digest and content.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "builder/git_repo.h"
#include "fixtures.h"
#include "quorate/attest/bundle.h"
#include "quorate/core/time.h"

namespace quorate::attest {
namespace {

using nlohmann::json;
using testing::build_result;
using testing::build_result_with;
using testing::fixed_signer;

// Collects every rule broken, as "path: what", so a failure shows them all.
struct Checker {
  std::vector<std::string> problems;
  void fail(const std::string& path, const std::string& what) { problems.push_back(path + ": " + what); }

  // RFC 3986 absolute URI: scheme ":" then only characters a URI holds (unreserved, reserved, "%" HEXDIG HEXDIG).
  static bool is_uri_text(const std::string& u) {
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    auto hex = [&](char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
    auto colon = u.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == u.size() || !alpha(u[0])) return false;
    for (size_t i = 1; i < colon; ++i) {
      if (!alpha(u[i]) && !digit(u[i]) && u[i] != '+' && u[i] != '-' && u[i] != '.') return false;
    }
    const std::string allowed = "-._~:/?#[]@!$&'()*+,;=";
    for (size_t i = colon + 1; i < u.size(); ++i) {
      char c = u[i];
      if (c == '%') {
        if (i + 2 >= u.size() || !hex(u[i + 1]) || !hex(u[i + 2])) return false;
        i += 2;
      } else if (!alpha(c) && !digit(c) && allowed.find(c) == std::string::npos) {
        return false;
      }
    }
    return true;
  }
  void uri(const json& v, const std::string& path) {
    if (!v.is_string() || !is_uri_text(v.get<std::string>())) fail(path, "not a URI: " + v.dump());
  }
  void string(const json& v, const std::string& path) {
    if (!v.is_string()) fail(path, "not a string");
  }
  void timestamp(const json& v, const std::string& path) {
    if (!v.is_string() || !parse_rfc3339(v.get<std::string>()).ok()) fail(path, "not an RFC 3339 timestamp");
  }
  void base64(const json& v, const std::string& path) {
    if (!v.is_string() || !base64_decode(v.get<std::string>()).ok()) fail(path, "not standard base64");
  }
  void only(const json& obj, const std::set<std::string>& allowed, const std::string& path) {
    for (const auto& [k, v] : obj.items()) {
      if (!allowed.count(k)) fail(path + "." + k, "not a field of this message");
    }
  }
  void required(const json& obj, const std::set<std::string>& keys, const std::string& path) {
    for (const auto& k : keys) {
      if (!obj.contains(k)) fail(path + "." + k, "required, missing");
    }
  }

  // DigestSet: algorithm -> lowercase hex of the algorithm's length (in-toto digest_set.md).
  void digest_set(const json& d, const std::string& path) {
    if (!d.is_object() || d.empty()) return fail(path, "a DigestSet is a non-empty object");
    static const std::map<std::string, size_t> lengths = {
        {"sha256", 64}, {"sha512", 128}, {"sha1", 40}, {"gitCommit", 40}, {"gitTree", 40}};
    for (const auto& [alg, hex] : d.items()) {
      if (!hex.is_string()) {
        fail(path + "." + alg, "not a string");
        continue;
      }
      auto h = hex.get<std::string>();
      if (!std::regex_match(h, std::regex("^[0-9a-f]+$"))) fail(path + "." + alg, "not lowercase hex");
      auto it = lengths.find(alg);
      if (it == lengths.end()) {
        fail(path + "." + alg, "not an algorithm of the in-toto DigestSet list");
      } else if (h.size() != it->second && !(alg == "gitCommit" && h.size() == 64)) {
        fail(path + "." + alg, "wrong length");
      }
    }
  }

  // ResourceDescriptor v1: all fields optional, but at least one of uri, digest, content.
  void resource_descriptor(const json& rd, const std::string& path) {
    if (!rd.is_object()) return fail(path, "not an object");
    only(rd, {"name", "uri", "digest", "content", "downloadLocation", "mediaType", "annotations"}, path);
    if (!rd.contains("uri") && !rd.contains("digest") && !rd.contains("content")) {
      fail(path, "a ResourceDescriptor must have one of uri, digest, content");
    }
    if (rd.contains("name")) string(rd["name"], path + ".name");
    if (rd.contains("uri")) uri(rd["uri"], path + ".uri");
    if (rd.contains("downloadLocation")) uri(rd["downloadLocation"], path + ".downloadLocation");
    if (rd.contains("digest")) digest_set(rd["digest"], path + ".digest");
    if (rd.contains("content")) base64(rd["content"], path + ".content");
    if (rd.contains("mediaType")) {
      if (!rd["mediaType"].is_string() ||
          !std::regex_match(rd["mediaType"].get<std::string>(), std::regex(R"(^[a-z]+/[A-Za-z0-9.+\-]+$)"))) {
        fail(path + ".mediaType", "not a MIME type");
      }
    }
    if (rd.contains("annotations") && !rd["annotations"].is_object()) fail(path + ".annotations", "not an object");
  }

  // in-toto Statement v1.
  void statement(const json& s) {
    only(s, {"_type", "subject", "predicateType", "predicate"}, "statement");
    required(s, {"_type", "subject", "predicateType"}, "statement");
    if (s.value("_type", "") != "https://in-toto.io/Statement/v1") fail("statement._type", "not Statement v1");
    uri(s["predicateType"], "statement.predicateType");
    if (!s["subject"].is_array() || s["subject"].empty()) return fail("statement.subject", "a non-empty list");
    for (size_t i = 0; i < s["subject"].size(); ++i) {
      const auto& sub = s["subject"][i];
      std::string p = "statement.subject[" + std::to_string(i) + "]";
      resource_descriptor(sub, p);
      if (!sub.contains("digest")) fail(p + ".digest", "a subject must have a digest");
    }
    if (s.contains("predicate") && !s["predicate"].is_object()) fail("statement.predicate", "not an object");
  }

  // SLSA Provenance v1 predicate.
  void provenance(const json& p) {
    only(p, {"buildDefinition", "runDetails"}, "predicate");
    required(p, {"buildDefinition", "runDetails"}, "predicate");
    const auto& def = p["buildDefinition"];
    only(def, {"buildType", "externalParameters", "internalParameters", "resolvedDependencies"}, "buildDefinition");
    required(def, {"buildType", "externalParameters"}, "buildDefinition");
    uri(def["buildType"], "buildDefinition.buildType");
    if (!def["externalParameters"].is_object()) fail("buildDefinition.externalParameters", "not an object");
    if (def.contains("internalParameters") && !def["internalParameters"].is_object()) {
      fail("buildDefinition.internalParameters", "not an object");
    }
    if (def.contains("resolvedDependencies")) {
      for (size_t i = 0; i < def["resolvedDependencies"].size(); ++i) {
        resource_descriptor(def["resolvedDependencies"][i], "resolvedDependencies[" + std::to_string(i) + "]");
      }
    }
    const auto& run = p["runDetails"];
    only(run, {"builder", "metadata", "byproducts"}, "runDetails");
    required(run, {"builder"}, "runDetails");
    const auto& b = run["builder"];
    only(b, {"id", "version", "builderDependencies"}, "runDetails.builder");
    required(b, {"id"}, "runDetails.builder");
    uri(b["id"], "runDetails.builder.id");
    if (b.contains("version")) {
      for (const auto& [k, v] : b["version"].items()) string(v, "runDetails.builder.version." + k);
    }
    if (run.contains("metadata")) {
      const auto& m = run["metadata"];
      only(m, {"invocationId", "startedOn", "finishedOn"}, "runDetails.metadata");
      if (m.contains("invocationId")) string(m["invocationId"], "runDetails.metadata.invocationId");
      if (m.contains("startedOn")) timestamp(m["startedOn"], "runDetails.metadata.startedOn");
      if (m.contains("finishedOn")) timestamp(m["finishedOn"], "runDetails.metadata.finishedOn");
    }
    if (run.contains("byproducts")) {
      for (size_t i = 0; i < run["byproducts"].size(); ++i) {
        resource_descriptor(run["byproducts"][i], "byproducts[" + std::to_string(i) + "]");
      }
    }
  }

  // DSSE envelope: payload and payloadType, one or more signatures with sig (and keyid).
  json envelope(const json& e, const std::string& path) {
    only(e, {"payload", "payloadType", "signatures"}, path);
    required(e, {"payload", "payloadType", "signatures"}, path);
    base64(e["payload"], path + ".payload");
    if (e.value("payloadType", "") != "application/vnd.in-toto+json") fail(path + ".payloadType", "not in-toto");
    if (!e["signatures"].is_array() || e["signatures"].empty()) fail(path + ".signatures", "a non-empty list");
    for (const auto& sig : e["signatures"]) {
      only(sig, {"sig", "keyid"}, path + ".signatures[]");
      required(sig, {"sig"}, path + ".signatures[]");
      base64(sig["sig"], path + ".signatures[].sig");
      if (sig.contains("keyid")) string(sig["keyid"], path + ".signatures[].keyid");
    }
    auto payload = base64_decode(e.value("payload", ""));
    return payload.ok() ? json::parse(*payload) : json();
  }

  // Sigstore bundle v0.3 (protobuf-specs, JSON form): mediaType, verificationMaterial with exactly one of
  // publicKey / certificate / x509CertificateChain (v0.3 forbids the chain) and tlogEntries, and exactly one of
  // messageSignature / dsseEnvelope.
  json bundle(const json& b) {
    only(b, {"mediaType", "verificationMaterial", "messageSignature", "dsseEnvelope"}, "bundle");
    required(b, {"mediaType", "verificationMaterial"}, "bundle");
    if (b.value("mediaType", "") != "application/vnd.dev.sigstore.bundle.v0.3+json") {
      fail("bundle.mediaType", "not the v0.3 media type");
    }
    const auto& vm = b["verificationMaterial"];
    only(vm, {"publicKey", "certificate", "x509CertificateChain", "tlogEntries", "timestampVerificationData"},
         "bundle.verificationMaterial");
    int content = vm.contains("publicKey") + vm.contains("certificate") + vm.contains("x509CertificateChain");
    if (content != 1)
      fail("bundle.verificationMaterial", "exactly one of publicKey, certificate, x509CertificateChain");
    if (vm.contains("x509CertificateChain")) fail("bundle.verificationMaterial", "v0.3 bundles carry no chain");
    if (vm.contains("publicKey")) {
      only(vm["publicKey"], {"hint"}, "bundle.verificationMaterial.publicKey");
      string(vm["publicKey"]["hint"], "bundle.verificationMaterial.publicKey.hint");
    }
    if (vm.contains("tlogEntries") && !vm["tlogEntries"].is_array()) fail("bundle.tlogEntries", "not a list");
    if (b.contains("messageSignature") == b.contains("dsseEnvelope")) {
      fail("bundle", "exactly one of messageSignature, dsseEnvelope");
    }
    return b.contains("dsseEnvelope") ? envelope(b["dsseEnvelope"], "bundle.dsseEnvelope") : json();
  }

  std::string report() const {
    std::string s;
    for (const auto& p : problems) s += p + "\n";
    return s;
  }
};

void check_statement(Checker& c, const json& statement) {
  c.statement(statement);
  if (statement.value("predicateType", "") == "https://slsa.dev/provenance/v1") c.provenance(statement["predicate"]);
}

TEST(SpecConformance, EnvelopeStatementAndProvenance) {
  auto bytes = attest_build_result(build_result(), *fixed_signer(KeyType::kEd25519), "node-a").value();
  Checker c;
  check_statement(c, c.envelope(json::parse(bytes), "envelope"));
  EXPECT_TRUE(c.problems.empty()) << c.report();
}

TEST(SpecConformance, SigstoreBundle) {
  auto bytes =
      attest_build_result(build_result(), *fixed_signer(KeyType::kEcdsaP256), "node-a", AttestFormat::kBundle).value();
  Checker c;
  check_statement(c, c.bundle(json::parse(bytes)));
  EXPECT_TRUE(c.problems.empty()) << c.report();
}

// Variants the builder writes: a builder image, a Containerfile's build args, a local repository by absolute
// path (with characters a URI must encode), a relative one, the recipe's public URI, a configured builder id.
TEST(SpecConformance, EveryVariantTheBuilderWrites) {
  json builder = {{"name", "example.org/builders/gcc"}, {"digest", "sha256:" + std::string(64, '9')}};
  auto r = json::parse(build_result_with("/builder_image", builder));
  r["build_args"] = {{"N", "1"}};
  r["source"]["recipe_kind"] = "containerfile";
  for (const char* locator : {"/tmp/my repo/hello", "hello", "https://example.org/hello.git"}) {
    r["source"]["locator"] = locator;
    Checker c;
    check_statement(c, json::parse(statement_from_build_result(r.dump(), "node a/é").value()));
    EXPECT_TRUE(c.problems.empty()) << locator << "\n" << c.report();
  }
  auto s = json::parse(statement_from_build_result(r.dump(), "node-a", "https://builders.example.org/a").value());
  EXPECT_EQ(s["predicate"]["runDetails"]["builder"]["id"], "https://builders.example.org/a");
  EXPECT_EQ(parse_statement(s.dump()).value().builder_id, "node-a");
  EXPECT_EQ(parse_statement(s.dump()).value().builder_uri, "https://builders.example.org/a");
}

TEST(SpecConformance, DependencyUris) {
  auto dep = [](const json& result) {
    return json::parse(statement_from_build_result(result.dump(), "node-a")
                           .value())["predicate"]["buildDefinition"]["resolvedDependencies"][0]["uri"]
        .get<std::string>();
  };
  auto r = json::parse(build_result());
  EXPECT_EQ(dep(r), "git+file:///src/hello.git");  // results without a locator: the uri as given
  r["source"]["uri"] = "hello";
  r["source"]["locator"] = "/work/my repo/hello";
  EXPECT_EQ(dep(r), "git+file:///work/my%20repo/hello");
  r["source"]["public_uri"] = "https://github.com/example/hello";
  EXPECT_EQ(dep(r), "git+https://github.com/example/hello");
  EXPECT_EQ(source_dependency_uri("git+ssh://git@example.org/x.git"), "git+ssh://git@example.org/x.git");
  EXPECT_EQ(source_dependency_uri("hello"), "git+file:hello");
  // A configured builder id that is not a URI is refused.
  EXPECT_TRUE(statement_from_build_result(build_result(), "node-a", "node-a").status().is_bad_input());
  EXPECT_TRUE(statement_from_build_result(build_result(), "node-a", "https://x/a b").status().is_bad_input());
}

// The checker can fail: the shapes issue 18 found are each reported.
TEST(SpecConformance, CheckerCatchesTheOldShapes) {
  auto s = json::parse(statement_from_build_result(build_result(), "node-a").value());
  s["predicate"]["runDetails"]["builder"]["id"] = "node-a";
  s["predicate"]["buildDefinition"]["resolvedDependencies"][0]["uri"] = "git+/tmp/hello";
  s["predicate"]["runDetails"]["byproducts"].push_back({{"name", "compressor"}, {"annotations", {{"c", "gzip"}}}});
  s["predicate"]["runDetails"]["metadata"]["startedOn"] = "yesterday";
  s["subject"][0]["digest"]["sha256"] = "ABC";
  Checker c;
  check_statement(c, s);
  std::string report = c.report();
  for (const char* want : {"runDetails.builder.id: not a URI", "resolvedDependencies[0].uri: not a URI",
                           "one of uri, digest, content", "startedOn: not an RFC 3339", "subject[0].digest.sha256"}) {
    EXPECT_NE(report.find(want), std::string::npos) << want << "\n" << report;
  }
}

// Issue 18, end to end: the checker run over what `quorate build --attest` and `quorate attest --bundle` wrote,
// and the dependency URI the CLI's build filled in: the recipe's public `[image] source` when it names one,
// else git+file:// and the repository's absolute path, percent-encoded.
TEST(SpecConformance, WhatTheCliWritesConforms) {
  quorate::testing::ScratchDir dir;
  namespace fs = std::filesystem;
  using quorate::testing::sh;
  using quorate::testing::slurp;
  auto cli = [&](const std::string& args) {
    auto r =
        quorate::testing::run("cd " + sh(dir.path().string()) + " && " + quorate::testing::quorate_bin() + " " + args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
  };
  auto site = builder::testing::example_dir("static-site");
  std::string published = builder::testing::make_repo(site, dir / "site");
  // The same recipe without its public source, in a directory whose name a URI must encode.
  fs::copy(site, dir / "local-src", fs::copy_options::recursive);
  std::string recipe = slurp(dir / "local-src/quorate.toml");
  auto line = recipe.find("source = ");
  ASSERT_NE(line, std::string::npos) << recipe;
  recipe.erase(line, recipe.find('\n', line) + 1 - line);
  quorate::testing::spit(dir / "local-src/quorate.toml", recipe);
  std::string local = builder::testing::make_repo(dir / "local-src", dir / "my repo");
  cli("key generate --out node-a.key.pem");
  cli("build -q --attest node-a.key.pem --repo site --commit " + published +
      " --work-dir work -o out --result-out out.result.json");
  cli("build -q --attest node-a.key.pem --repo 'my repo' --commit " + local + " --work-dir work -o local");
  cli("attest --key node-a.key.pem --bundle out.result.json -o out.bundle.json");
  auto dependency = [](const json& statement) {
    return statement["predicate"]["buildDefinition"]["resolvedDependencies"][0].value("uri", "");
  };
  Checker envelope;
  auto from_site = envelope.envelope(json::parse(slurp(dir / "out.att.json")), "out.att.json");
  check_statement(envelope, from_site);
  EXPECT_TRUE(envelope.problems.empty()) << envelope.report();
  EXPECT_EQ(dependency(from_site), "git+https://example.org/quorate/static-site");
  Checker local_envelope;
  auto from_local = local_envelope.envelope(json::parse(slurp(dir / "local.att.json")), "local.att.json");
  check_statement(local_envelope, from_local);
  EXPECT_TRUE(local_envelope.problems.empty()) << local_envelope.report();
  std::string path = fs::canonical(dir / "my repo").string();
  EXPECT_EQ(dependency(from_local), "git+file://" + path.replace(path.rfind(' '), 1, "%20"));
  Checker bundle;
  check_statement(bundle, bundle.bundle(json::parse(slurp(dir / "out.bundle.json"))));
  EXPECT_TRUE(bundle.problems.empty()) << bundle.report();
}

}  // namespace
}  // namespace quorate::attest
