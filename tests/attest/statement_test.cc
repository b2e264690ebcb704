// The statement: built from a build result, parsed back, deterministic, and strict about what it accepts.
#include "quorate/attest/statement.h"

#include "quorate/core/sha256.h"
#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using testing::build_result;
using testing::build_result_with;

TEST(Statement, CarriesTheBuildResultFields) {
  auto s = parse_statement(statement_from_build_result(build_result(), "node-a").value()).value();
  EXPECT_EQ(s.subject_name, "example.org/hello");
  EXPECT_EQ(s.image_digest, "sha256:" + std::string(64, '5'));
  EXPECT_EQ(s.config_digest, "sha256:" + std::string(64, '2'));
  EXPECT_EQ(s.diff_ids, std::vector<std::string>{"sha256:" + std::string(64, '3')});
  EXPECT_EQ(s.source_uri, "file:///src/hello.git");
  EXPECT_EQ(s.commit, "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(s.recipe_path, "quorate.toml");
  ASSERT_EQ(s.base_images.size(), 1u);
  EXPECT_EQ(s.base_images[0].name, "debian:12");
  EXPECT_EQ(s.base_images[0].digest, "sha256:" + std::string(64, '1'));
  EXPECT_EQ(s.compressor, "gzip zlib 1.2.13 level 6");
  EXPECT_EQ(s.canonical_form, 1);
  EXPECT_EQ(s.source_date_epoch, 1700000000);
  EXPECT_EQ(s.builder_id, "node-a");
  EXPECT_EQ(s.builder_version, "0.1.0");
  EXPECT_EQ(s.finished_on - s.started_on, 3);
}

TEST(Statement, BuilderImageIsAResolvedDependencyMarkedAsTheBuilder) {
  auto plain = parse_statement(statement_from_build_result(build_result(), "node-a").value()).value();
  EXPECT_FALSE(plain.builder_image.has_value());
  nlohmann::json builder = {{"name", "example.org/builders/gcc"}, {"digest", "sha256:" + std::string(64, '9')}};
  auto text = statement_from_build_result(build_result_with("/builder_image", builder), "node-a").value();
  EXPECT_NE(text.find("\"role\":\"builder\""), std::string::npos);
  auto s = parse_statement(text).value();
  ASSERT_TRUE(s.builder_image.has_value());
  EXPECT_EQ(s.builder_image->name, "example.org/builders/gcc");
  EXPECT_EQ(s.builder_image->digest, "sha256:" + std::string(64, '9'));
  ASSERT_EQ(s.base_images.size(), 1u);  // the builder is not a base image
}

TEST(Statement, RunEnvironmentIsCarriedAndDerivedForOlderResults) {
  // Build results written before the field: a builder image means the image, otherwise the host.
  auto plain = parse_statement(statement_from_build_result(build_result(), "node-a").value()).value();
  EXPECT_EQ(plain.run_environment, "host");
  nlohmann::json builder = {{"name", "example.org/builders/gcc"}, {"digest", "sha256:" + std::string(64, '9')}};
  auto pinned =
      parse_statement(statement_from_build_result(build_result_with("/builder_image", builder), "node-a").value());
  EXPECT_EQ(pinned.value().run_environment, "image");
  auto text = statement_from_build_result(build_result_with("/run_environment", "none"), "node-a").value();
  EXPECT_NE(text.find("\"runEnvironment\":\"none\""), std::string::npos);
  EXPECT_EQ(parse_statement(text).value().run_environment, "none");
  auto bad = statement_from_build_result(build_result_with("/run_environment", "laptop"), "node-a");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("run_environment"), std::string::npos) << bad.status().to_string();
}

TEST(Statement, BuildArgsAreExternalParameters) {
  // Recipe results have no build_args: their statements have no buildArgs (and keep their bytes).
  auto plain_text = statement_from_build_result(build_result(), "node-a").value();
  EXPECT_EQ(plain_text.find("buildArgs"), std::string::npos);
  EXPECT_TRUE(parse_statement(plain_text).value().build_args.empty());
  nlohmann::json args = {{"FLAVOR", "spicy"}, {"EMPTY", ""}};
  auto text = statement_from_build_result(build_result_with("/build_args", args), "node-a").value();
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"], args);
  auto s = parse_statement(text).value();
  EXPECT_EQ(s.build_args, (std::map<std::string, std::string>{{"EMPTY", ""}, {"FLAVOR", "spicy"}}));
  // A Containerfile build given no --build-arg still says so: an empty object.
  auto none = nlohmann::json::parse(
      statement_from_build_result(build_result_with("/build_args", nlohmann::json::object()), "node-a").value());
  EXPECT_EQ(none["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"], nlohmann::json::object());
  auto bad = statement_from_build_result(build_result_with("/build_args", nlohmann::json{{"N", 1}}), "node-a");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("build_args: \"N\" is not a string"), std::string::npos);
  // A statement whose buildArgs hold a non-string is refused when parsed.
  j["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"]["N"] = 2;
  EXPECT_FALSE(parse_statement(j.dump()).ok());
}

TEST(Statement, IsInTotoV1WithSlsaProvenanceV1) {
  auto j = nlohmann::json::parse(statement_from_build_result(build_result(), "node-a").value());
  EXPECT_EQ(j["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(j["predicateType"], "https://slsa.dev/provenance/v1");
  EXPECT_EQ(j["predicate"]["runDetails"]["builder"]["id"], "https://quorate.dev/node/node-a");
  EXPECT_EQ(j["predicate"]["runDetails"]["builder"]["version"]["quorate.node_id"], "node-a");
  EXPECT_EQ(j["predicate"]["runDetails"]["metadata"]["startedOn"], "2026-11-23T08:00:00Z");
  EXPECT_EQ(j["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["gitCommit"],
            "0123456789abcdef0123456789abcdef01234567");
}

TEST(Statement, CanonicalBytesArePinned) {
  // A change of these bytes changes every attestation: make it on purpose. Bump canonical_form only when the
  // image bytes change too (adding internalParameters.runEnvironment did not: votes are compared by digest).
  auto bytes = statement_from_build_result(build_result(), "node-a").value();
  EXPECT_EQ(bytes.find('\n'), std::string::npos);
  EXPECT_EQ(sha256_digest(bytes), "sha256:6939620eef8058e58a435448fd36d293c6c15f3149bd8ce52be6b83c45dd11fa");
}

TEST(Statement, TimesOnlyInRunDetailsMetadata) {
  auto a = nlohmann::json::parse(statement_from_build_result(build_result(), "node-a").value());
  auto later = build_result_with("/started_on", "2030-01-01T00:00:00Z");
  auto b = nlohmann::json::parse(statement_from_build_result(nlohmann::json::parse(later).dump(), "node-a").value());
  a["predicate"]["runDetails"].erase("metadata");
  b["predicate"]["runDetails"].erase("metadata");
  EXPECT_EQ(a, b);
}

TEST(Statement, MissingRequiredFieldNamesIt) {
  auto j = nlohmann::json::parse(build_result());
  j["image"].erase("config_digest");
  auto r = statement_from_build_result(j.dump(), "node-a");
  ASSERT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("config_digest"), std::string::npos) << r.status().message();
}

TEST(Statement, MalformedBuildResultDigestIsRejected) {
  auto r = statement_from_build_result(build_result_with("/image/manifest_digest", "sha256:abc"), "node-a");
  ASSERT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("manifest_digest"), std::string::npos);
}

TEST(Statement, WrongSchemaOrEmptyNodeIdIsRejected) {
  EXPECT_TRUE(statement_from_build_result(build_result_with("/schema", "v0"), "n").status().is_bad_input());
  EXPECT_TRUE(statement_from_build_result(build_result(), "").status().is_bad_input());
  EXPECT_TRUE(statement_from_build_result(build_result_with("/source/commit", "xyz"), "n").status().is_bad_input());
  EXPECT_TRUE(statement_from_build_result(build_result_with("/finished_on", "yesterday"), "n").status().is_bad_input());
}

TEST(Statement, SubjectDigestNot64HexIsBadInput) {
  auto j = nlohmann::json::parse(testing::statement_of());
  j["subject"][0]["digest"]["sha256"] = "abc";
  auto r = parse_statement(j.dump());
  ASSERT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("not 64 lowercase hex"), std::string::npos) << r.status().message();
}

TEST(Statement, ForeignTypesAreVerificationFailures) {
  auto j = nlohmann::json::parse(testing::statement_of());
  j["predicateType"] = "https://slsa.dev/provenance/v0.2";
  EXPECT_TRUE(parse_statement(j.dump()).status().is_verification());
  j = nlohmann::json::parse(testing::statement_of());
  j["_type"] = "https://in-toto.io/Statement/v0.1";
  EXPECT_TRUE(parse_statement(j.dump()).status().is_verification());
}

TEST(Statement, ABuilderRoleThatIsNotAStringIsBadInput) {
  nlohmann::json builder = {{"name", "example.org/builders/gcc"}, {"digest", "sha256:" + std::string(64, '9')}};
  auto text = statement_from_build_result(build_result_with("/builder_image", builder), "node-a").value();
  auto at = text.find("\"role\":\"builder\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("\"role\":\"builder\"").size(), "\"role\":1");
  auto r = parse_statement(text);
  ASSERT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("annotations: \"role\" is not a string"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace quorate::attest
