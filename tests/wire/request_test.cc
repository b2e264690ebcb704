// RebuildRequest: the recipe default and the epoch applied once, one id per build, protobuf only at the socket.
#include "quorate/wire/request.h"
#include "quorate/core/sha256.h"

#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <set>

namespace quorate::wire {
namespace {

RebuildRequest hello() {
  return {"", "https://git.example/hello.git", "0123456789abcdef0123456789abcdef01234567", "", "", {}};
}

TEST(RebuildRequest, NoRecipeAndTheDefaultRecipeAreOneRequest) {
  auto implicit = normalize_request(hello()).value();
  RebuildRequest r = hello();
  r.recipe_path = "quorate.toml";
  auto explicit_ = normalize_request(r).value();
  EXPECT_EQ(implicit.recipe_path, "quorate.toml");
  EXPECT_EQ(implicit.request_id, explicit_.request_id);
  EXPECT_EQ(implicit, explicit_);
}

TEST(RebuildRequest, EveryInputThatChangesTheBuildChangesTheId) {
  std::string base = normalize_request(hello()).value().request_id;
  EXPECT_EQ(base.rfind("req-", 0), 0u);
  std::vector<RebuildRequest> others(5, hello());
  others[0].repo += "x";
  others[1].commit = "main";
  others[2].recipe_path = "other.toml";
  others[3].image_name = "example.org/x";
  others[4].source_date_epoch = 0;  // an explicit epoch 0 is not "the commit's time"
  std::set<std::string> ids = {base};
  for (const auto& o : others) ids.insert(normalize_request(o).value().request_id);
  EXPECT_EQ(ids.size(), 6u);
  RebuildRequest named = hello();
  named.request_id = "mine";
  EXPECT_EQ(normalize_request(named).value().request_id, "mine");
}

TEST(RebuildRequest, EpochZeroSurvivesTheWire) {
  RebuildRequest r = hello();
  r.source_date_epoch = 0;
  auto normalized = normalize_request(r).value();
  pb::BuildRequest m = to_wire(normalized);
  ASSERT_TRUE(m.has_source_date_epoch());
  auto back = request_from_wire(m).value();
  EXPECT_EQ(back, normalized);
  ASSERT_TRUE(back.source_date_epoch.has_value());
  EXPECT_EQ(*back.source_date_epoch, 0);
  auto none = request_from_wire(to_wire(normalize_request(hello()).value())).value();
  EXPECT_FALSE(none.source_date_epoch.has_value());
}

TEST(RebuildRequest, BadFieldsAreRefusedNamingTheField) {
  auto refused = [](RebuildRequest r) { return normalize_request(std::move(r)).status(); };
  RebuildRequest r = hello();
  r.repo.clear();
  EXPECT_NE(refused(r).message().find("repo is empty"), std::string::npos);
  r = hello();
  r.image_name = std::string("a\nb\0c", 5);
  EXPECT_TRUE(refused(r).is_bad_input());
  EXPECT_NE(refused(r).message().find("image_name"), std::string::npos);
  r = hello();
  r.recipe_path = std::string(5000, 'x');
  EXPECT_NE(refused(r).message().find("recipe_path is longer"), std::string::npos);
  for (int64_t bad : {int64_t{-1}, kMaxSourceDateEpoch + 1, std::numeric_limits<int64_t>::max()}) {
    r = hello();
    r.source_date_epoch = bad;
    EXPECT_NE(refused(r).message().find("source_date_epoch"), std::string::npos) << bad;
  }
  r = hello();
  r.source_date_epoch = kMaxSourceDateEpoch;
  EXPECT_TRUE(normalize_request(r).ok());
  pb::BuildRequest no_id = to_wire(normalize_request(hello()).value());
  no_id.clear_request_id();
  EXPECT_NE(request_from_wire(no_id).status().message().find("request_id is empty"), std::string::npos);
}

TEST(RebuildRequest, BuildArgsChangeTheIdButNotTheIdsOfRequestsWithout) {
  // Pinned: requests without build args keep the id they had before the field existed (a resubmission after
  // an upgrade is still answered with the existing job).
  EXPECT_EQ(normalize_request(hello()).value().request_id, "req-26ca177cc3419cd3");
  RebuildRequest a = hello();
  a.recipe_path = "Containerfile";
  std::string without = normalize_request(a).value().request_id;
  a.build_args = {{"FLAVOR", "spicy"}};
  std::string spicy = normalize_request(a).value().request_id;
  a.build_args = {{"FLAVOR", "mild"}};
  std::string mild = normalize_request(a).value().request_id;
  a.build_args = {{"FLAVOR", ""}};
  std::string empty_value = normalize_request(a).value().request_id;
  a.build_args = {{"FLAVOR", "spicy"}, {"V", "1"}};
  std::string two = normalize_request(a).value().request_id;
  // Delimited: NAME=a=b;… cannot be read as another split of the same characters.
  a.build_args = {{"A", "1;2:B=3"}};
  std::string tricky = normalize_request(a).value().request_id;
  a.build_args = {{"A", "1"}, {"B", "3"}};
  std::string split = normalize_request(a).value().request_id;
  std::set<std::string> ids = {without, spicy, mild, empty_value, two, tricky, split};
  EXPECT_EQ(ids.size(), 7u);
}

// The build args enter the id as their canonical text (core/build_args.h), the one spelling the statement's
// buildArgs, the store's key column and the wire's SubjectKey use; a set without one is refused.
TEST(RebuildRequest, BuildArgsEnterTheIdAsTheirCanonicalText) {
  RebuildRequest a = hello();
  a.recipe_path = "Containerfile";
  a.build_args = {{"V", "1"}, {"FLAVOR", "spicy"}};
  std::string text;
  for (const std::string* f : {&a.repo, &a.commit, &a.recipe_path, &a.image_name}) {
    text += std::to_string(f->size()) + ":" + *f + ";";
  }
  const std::string canonical = R"({"FLAVOR":"spicy","V":"1"})";
  text += "commit-time;args;" + std::to_string(canonical.size()) + ":" + canonical;
  EXPECT_EQ(normalize_request(a).value().request_id, "req-" + sha256_hex(text).substr(0, 16));
  a.build_args = {{"A", "\xff"}};
  auto refused = normalize_request(a);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("the value of A is not UTF-8"), std::string::npos);
}

TEST(RebuildRequest, BuildArgsSurviveTheWire) {
  RebuildRequest r = hello();
  r.recipe_path = "Containerfile";
  r.build_args = {{"FLAVOR", "spicy"}, {"EMPTY", ""}};
  auto normalized = normalize_request(r).value();
  pb::BuildRequest m = to_wire(normalized);
  ASSERT_EQ(m.build_args_size(), 2);
  EXPECT_EQ(m.build_args().at("FLAVOR"), "spicy");
  std::string bytes;
  ASSERT_TRUE(m.SerializeToString(&bytes));
  pb::BuildRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  auto back = request_from_wire(parsed).value();
  EXPECT_EQ(back, normalized);
  EXPECT_EQ(back.build_args.at("EMPTY"), "");
  // The id a node derives from the fields equals the client's.
  EXPECT_EQ(derive_request_id(back), normalized.request_id);
}

// The image tag travels with the request (nodes asked by `quorate submit --tag` name the image alike) and is
// part of the derived id only when set, so the ids of requests without a tag did not change.
TEST(RebuildRequest, ImageTagSurvivesTheWireAndChangesTheId) {
  RebuildRequest r = hello();
  r.recipe_path = "Containerfile";
  std::string untagged = normalize_request(r).value().request_id;
  r.image_tag = "v1";
  auto normalized = normalize_request(r).value();
  EXPECT_NE(normalized.request_id, untagged);
  std::string bytes;
  ASSERT_TRUE(to_wire(normalized).SerializeToString(&bytes));
  pb::BuildRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.image_tag(), "v1");
  auto back = request_from_wire(parsed).value();
  EXPECT_EQ(back, normalized);
  EXPECT_EQ(derive_request_id(back), normalized.request_id);
  r.image_tag = "v1\n";
  EXPECT_NE(normalize_request(r).status().message().find("image_tag holds a control character"), std::string::npos);
}

TEST(RebuildRequest, BadBuildArgsAreRefused) {
  auto refused = [](std::map<std::string, std::string> args) {
    RebuildRequest r = hello();
    r.build_args = std::move(args);
    return normalize_request(std::move(r)).status();
  };
  EXPECT_NE(refused({{"", "x"}}).message().find("build_args: a name is empty"), std::string::npos);
  EXPECT_NE(refused({{"A=B", "x"}}).message().find("holds '='"), std::string::npos);
  EXPECT_NE(refused({{"A", "x\ny"}}).message().find("build_args A holds a control character"), std::string::npos);
  EXPECT_NE(refused({{"A\tB", "x"}}).message().find("build_args name holds a control character"), std::string::npos);
  EXPECT_NE(refused({{"A", std::string(5000, 'v')}}).message().find("build_args A is longer"), std::string::npos);
  std::map<std::string, std::string> many;
  for (size_t i = 0; i <= kMaxBuildArgs; ++i) many["A" + std::to_string(i)] = "v";
  EXPECT_NE(refused(many).message().find("at most 64"), std::string::npos);
  many.erase(many.begin());
  EXPECT_TRUE(refused(many).ok());
  // From the wire too, before the map is copied.
  pb::BuildRequest m = to_wire(normalize_request(hello()).value());
  for (size_t i = 0; i <= kMaxBuildArgs; ++i) (*m.mutable_build_args())["A" + std::to_string(i)] = "v";
  EXPECT_TRUE(request_from_wire(m).status().is_bad_input());
}

}  // namespace
}  // namespace quorate::wire
