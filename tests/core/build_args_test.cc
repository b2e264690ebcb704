// The canonical form of a set of build args: one spelling, duplicates refused, values exact bytes.
#include "quorate/core/build_args.h"

#include <gtest/gtest.h>

namespace quorate {
namespace {

TEST(BuildArgs, CanonicalTextIsSortedCompactAndEmptyForNone) {
  EXPECT_EQ(build_args_text({}).value(), "");
  EXPECT_EQ(build_args_text({{"B", "2"}, {"A", " 1 "}, {"É", "ü"}}).value(), "{\"A\":\" 1 \",\"B\":\"2\",\"É\":\"ü\"}");
  EXPECT_EQ(build_args_text({{"A", "x\"\n"}}).value(), "{\"A\":\"x\\\"\\n\"}");
  EXPECT_NE(build_args_text({{"A", "\xff"}}).status().message().find("the value of A is not UTF-8"), std::string::npos);
  EXPECT_NE(build_args_text({{"A=B", "1"}}).status().message().find("holds '='"), std::string::npos);
  EXPECT_NE(build_args_text({{"", "1"}}).status().message().find("a name is empty"), std::string::npos);
}

TEST(BuildArgs, TextRoundTripsAndOnlyTheCanonicalSpellingIsRead) {
  BuildArgMap args = {{"FLAVOR", "spicy"}, {"EMPTY", ""}};
  EXPECT_EQ(parse_build_args_text(build_args_text(args).value()).value(), args);
  EXPECT_TRUE(parse_build_args_text("").value().empty());
  auto refused = [](std::string_view text) { return parse_build_args_text(text).status().message(); };
  EXPECT_NE(refused(R"({"A":"1","A":"2"})").find("A given twice"), std::string::npos);
  EXPECT_NE(refused(R"({"B":"1","A":"2"})").find("not in canonical form"), std::string::npos);
  EXPECT_NE(refused(R"({"A": "1"})").find("not in canonical form"), std::string::npos);
  EXPECT_NE(refused("{}").find("not in canonical form"), std::string::npos);
  EXPECT_NE(refused(R"({"A":1})").find("the value of A is not a string"), std::string::npos);
  EXPECT_NE(refused(R"(["A"])").find("not a JSON object"), std::string::npos);
  EXPECT_NE(refused("{").find("not JSON"), std::string::npos);
}

TEST(BuildArgs, FlagsSplitAtTheFirstEqualsAndRefuseDuplicates) {
  EXPECT_EQ(parse_build_arg_flags({"A=1=2", "B="}).value(), (BuildArgMap{{"A", "1=2"}, {"B", ""}}));
  EXPECT_NE(parse_build_arg_flags({"A=1", "A=1"}).status().message().find("--build-arg A given twice"),
            std::string::npos);
  EXPECT_EQ(parse_build_arg_flags({"A"}).status().code(), Code::kUsage);
  EXPECT_EQ(parse_build_arg_flags({"=1"}).status().code(), Code::kUsage);
  EXPECT_EQ(describe_build_args(""), "");
  EXPECT_EQ(describe_build_args(R"({"A":"1"})"), R"( with build args {"A":"1"})");
}

}  // namespace
}  // namespace quorate
