// Containerfile parsing: directives, continuations, forms, flags, substitution, and every refusal with its line.
#include "quorate/builder/containerfile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quorate::builder {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using K = Instruction::Kind;

const std::string kPin = "sha256:" + std::string(64, 'a');
const std::string kBase = "example.org/busybox@" + kPin;

Containerfile parse_ok(const std::string& text, const std::map<std::string, std::string>& args = {}) {
  auto cf = parse_containerfile(text, "Containerfile", args);
  EXPECT_TRUE(cf.ok()) << cf.status().to_string();
  return cf.ok() ? *cf : Containerfile{};
}

// The refusal's message, which must name the file and line.
std::string refusal(const std::string& text, int line, const std::map<std::string, std::string>& args = {}) {
  auto cf = parse_containerfile(text, "Containerfile", args);
  EXPECT_FALSE(cf.ok()) << text;
  if (cf.ok()) return "";
  EXPECT_TRUE(cf.status().is_bad_input()) << cf.status().to_string();
  EXPECT_THAT(cf.status().message(), HasSubstr("Containerfile:" + std::to_string(line) + ": "));
  return cf.status().message();
}

TEST(ContainerfilePath, NamesAndSuffixes) {
  EXPECT_TRUE(is_containerfile_path("Containerfile"));
  EXPECT_TRUE(is_containerfile_path("Dockerfile"));
  EXPECT_TRUE(is_containerfile_path("deploy/web.Dockerfile"));
  EXPECT_TRUE(is_containerfile_path("a/b/app.Containerfile"));
  EXPECT_FALSE(is_containerfile_path("quorate.toml"));
  EXPECT_FALSE(is_containerfile_path("Dockerfile.toml"));
  EXPECT_FALSE(is_containerfile_path(".Dockerfile"));
  EXPECT_FALSE(is_containerfile_path("dockerfile"));
}

TEST(ContainerfileParse, StagesInstructionsAndLines) {
  auto cf = parse_ok("# a comment\n\nFROM " + kBase +
                     " AS Build\nWORKDIR /src\nRUN echo hi\n\nFROM scratch\n"
                     "COPY --from=build /src/x /x\n");
  ASSERT_EQ(cf.stages.size(), 2u);
  EXPECT_EQ(cf.stages[0].name, "build");
  EXPECT_EQ(cf.stages[0].line, 3);
  EXPECT_EQ(cf.stages[0].base, Stage::Base::kImage);
  EXPECT_EQ(cf.stages[0].image_name, "example.org/busybox");
  EXPECT_EQ(cf.stages[0].digest, kPin);
  ASSERT_EQ(cf.stages[0].instructions.size(), 2u);
  EXPECT_EQ(cf.stages[0].instructions[0].kind, K::kWorkdir);
  EXPECT_EQ(cf.stages[0].instructions[0].line, 4);
  EXPECT_EQ(cf.stages[0].instructions[1].line, 5);
  EXPECT_EQ(cf.stages[1].base, Stage::Base::kScratch);
  EXPECT_EQ(cf.stages[1].instructions[0].flag("from"), "build");
  EXPECT_EQ(cf.stages[1].instructions[0].line, 8);
}

TEST(ContainerfileParse, KeywordsAreCaseInsensitive) {
  auto cf = parse_ok("from " + kBase + "\nrun echo hi\nCmd [\"a\"]\n");
  ASSERT_EQ(cf.stages[0].instructions.size(), 2u);
  EXPECT_EQ(cf.stages[0].instructions[0].kind, K::kRun);
  EXPECT_EQ(cf.stages[0].instructions[1].kind, K::kCmd);
  EXPECT_EQ(cf.stages[0].instructions[0].text, "RUN echo hi");
}

TEST(ContainerfileParse, ContinuationsJoinLinesAndSkipCommentsInside) {
  auto cf = parse_ok("FROM " + kBase + "\nRUN echo a \\\n# inside\n\n   && echo b\\  \n  c\nENV X=1\n");
  const auto& run = cf.stages[0].instructions[0];
  EXPECT_EQ(run.line, 2);
  EXPECT_FALSE(run.exec_form);
  EXPECT_THAT(run.args, ElementsAre("echo a    && echo b  c"));
  EXPECT_EQ(cf.stages[0].instructions[1].line, 7);
}

TEST(ContainerfileParse, EscapeDirectiveChangesTheContinuationCharacter) {
  auto cf = parse_ok("# escape=`\n# syntax=docker/dockerfile:1\nFROM " + kBase + "\nRUN dir c:\\ `\n  && echo\n");
  EXPECT_EQ(cf.escape, '`');
  EXPECT_EQ(cf.syntax, "docker/dockerfile:1");
  EXPECT_THAT(cf.stages[0].instructions[0].args, ElementsAre("dir c:\\   && echo"));
}

TEST(ContainerfileParse, DirectivesOnlyAtTheTop) {
  auto cf = parse_ok("FROM " + kBase + "\n# escape=`\nRUN a \\\n b\n");
  EXPECT_EQ(cf.escape, '\\');
  EXPECT_THAT(cf.stages[0].instructions[0].args, ElementsAre("a  b"));
}

TEST(ContainerfileParse, ExecAndShellForms) {
  auto cf = parse_ok("FROM " + kBase +
                     "\nRUN [\"/bin/echo\", \"a b\"]\nRUN [not json\nCMD echo $HOME\n"
                     "ENTRYPOINT [\"/x\"]\nSHELL [\"/bin/ash\", \"-ec\"]\n");
  const auto& in = cf.stages[0].instructions;
  EXPECT_TRUE(in[0].exec_form);
  EXPECT_THAT(in[0].args, ElementsAre("/bin/echo", "a b"));
  EXPECT_FALSE(in[1].exec_form);
  EXPECT_THAT(in[1].args, ElementsAre("[not json"));
  EXPECT_FALSE(in[2].exec_form);
  EXPECT_THAT(in[2].args, ElementsAre("echo $HOME"));
  EXPECT_TRUE(in[3].exec_form);
  EXPECT_TRUE(in[4].exec_form);
  EXPECT_THAT(in[4].args, ElementsAre("/bin/ash", "-ec"));
}

TEST(ContainerfileParse, CopyFlagsAndForms) {
  auto cf = parse_ok("FROM " + kBase +
                     " AS a\nFROM scratch\nCOPY --from=0 --chown=1000:1000 --chmod=0750 [\"x y\", \"/d/\"]\n"
                     "ADD --chmod=644 a.tar /\nCOPY --from=a a b /c/\n");
  const auto& copy = cf.stages[1].instructions[0];
  EXPECT_EQ(copy.kind, K::kCopy);
  EXPECT_EQ(copy.flag("from"), "0");
  EXPECT_EQ(copy.flag("chown"), "1000:1000");
  EXPECT_EQ(copy.flag("chmod"), "0750");
  EXPECT_TRUE(copy.exec_form);
  EXPECT_THAT(copy.args, ElementsAre("x y", "/d/"));
  EXPECT_EQ(cf.stages[1].instructions[1].kind, K::kAdd);
}

TEST(ContainerfileParse, CopyFromAPinnedImage) {
  auto cf = parse_ok("FROM scratch\nCOPY --from=" + kBase + " /bin/busybox /\n");
  EXPECT_EQ(cf.stages[0].instructions[0].flag("from"), kBase);
}

TEST(ContainerfileParse, FromAnEarlierStage) {
  auto cf = parse_ok("FROM " + kBase + " AS base\nRUN true\nFROM base AS test\nRUN true\n");
  EXPECT_EQ(cf.stages[1].base, Stage::Base::kStage);
  EXPECT_EQ(cf.stages[1].base_stage, 0u);
}

TEST(ContainerfileParse, GlobalArgsReachFromAndBuildArgsOverrideThem) {
  std::string other = "example.org/other@sha256:" + std::string(64, 'b');
  std::string text = "ARG BASE=" + kBase + "\nARG UNSET\nFROM ${BASE}\nARG BASE\n";
  EXPECT_EQ(parse_ok(text).stages[0].digest, kPin);
  auto cf = parse_ok(text, {{"BASE", other}});
  EXPECT_EQ(cf.stages[0].image_name, "example.org/other");
  ASSERT_EQ(cf.global_args.size(), 2u);
  EXPECT_EQ(cf.global_args[0].value, other);
  EXPECT_EQ(cf.global_args[1].value, std::nullopt);
  EXPECT_EQ(cf.build_args.at("BASE"), other);
}

TEST(ContainerfileParse, FromPlatformOnlyLinuxAmd64) {
  parse_ok("FROM --platform=$BUILDPLATFORM " + kBase + "\n");
  auto msg = refusal("FROM --platform=linux/arm64 " + kBase + "\n", 1);
  EXPECT_THAT(msg, HasSubstr("linux/arm64"));
}

TEST(ContainerfileParse, HealthcheckNoneAndCmd) {
  auto cf = parse_ok("FROM " + kBase +
                     "\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --retries=3 CMD [\"/ok\"]\n"
                     "HEALTHCHECK CMD test -f /x\n");
  const auto& in = cf.stages[0].instructions;
  EXPECT_TRUE(in[0].healthcheck_none);
  EXPECT_TRUE(in[1].exec_form);
  EXPECT_THAT(in[1].args, ElementsAre("/ok"));
  EXPECT_EQ(in[1].flag("interval"), "5s");
  EXPECT_THAT(in[2].args, ElementsAre("test -f /x"));
}

// HEALTHCHECK flags are Go durations and a 32-bit count, as BuildKit reads them. They were checked loosely
// ('.' counted as a digit, no bound): `--interval=.s` crashed the build in std::stod, a 23-digit --retries in
// std::stoll, and 10^32 hours overflowed to a negative Interval in the image config.
TEST(ContainerfileRefuse, HealthcheckFlagsOutOfSyntaxOrRange) {
  const std::pair<std::string, std::string> cases[] = {
      {"--interval=.s", "HEALTHCHECK --interval=.s is not a duration"},
      {"--retries=99999999999999999999999", "HEALTHCHECK --retries=99999999999999999999999 is more than 2147483647"},
      {"--interval=99999999999999999999999999999999h",
       "--interval=99999999999999999999999999999999h is not a duration"},
      {"--timeout=2562047h47m16.854775808s", "--timeout=2562047h47m16.854775808s is not a duration"},
      {"--interval=1", "--interval=1 is not a duration"},
      {"--interval=5x", "--interval=5x is not a duration"},
      {"--interval=1.2.3s", "--interval=1.2.3s is not a duration"},
      {"--interval=s", "--interval=s is not a duration"},
      {"--interval=-", "--interval=- is not a duration"},
      {"--start-period=500us", "--start-period=500us is less than 1ms"},
      {"--start-interval=-1s", "--start-interval=-1s is less than 1ms"},
      {"--retries=-1", "--retries=-1 is negative"},
      {"--retries=3x", "--retries=3x is not a count"},
      {"--retries=2147483648", "--retries=2147483648 is more than 2147483647"},
  };
  for (const auto& [flag, message] : cases) {
    EXPECT_THAT(refusal("FROM " + kBase + "\nHEALTHCHECK " + flag + " CMD true\n", 2), HasSubstr(message)) << flag;
  }
}

TEST(Healthcheck, FlagValuesAreGoDurationsInNanoseconds) {
  auto value = [](const std::string& name, const std::string& text) -> int64_t {
    auto v = healthcheck_flag_value({name, text});
    EXPECT_TRUE(v.ok()) << name << "=" << text << ": " << v.status().to_string();
    return v.ok() ? *v : -1;
  };
  EXPECT_EQ(value("interval", "30s"), 30'000'000'000);
  EXPECT_EQ(value("interval", "1m30s"), 90'000'000'000);
  EXPECT_EQ(value("timeout", "1.5h"), 5'400'000'000'000);
  EXPECT_EQ(value("timeout", ".5s"), 500'000'000);
  EXPECT_EQ(value("timeout", "5.s"), 5'000'000'000);
  EXPECT_EQ(value("start-period", "1ms"), 1'000'000);
  EXPECT_EQ(value("start-period", "1000\u00b5s"), 1'000'000);
  EXPECT_EQ(value("start-period", "1h2m3s4ms5us6ns"), 3'723'004'005'006);
  EXPECT_EQ(value("start-interval", "+2s"), 2'000'000'000);
  EXPECT_EQ(value("interval", "0"), 0);
  EXPECT_EQ(value("interval", "0s"), 0);
  EXPECT_EQ(value("interval", "2562047h47m16.854775807s"), INT64_MAX);
  EXPECT_EQ(value("retries", "0"), 0);
  EXPECT_EQ(value("retries", "2147483647"), 2'147'483'647);
}

TEST(ContainerfileParse, EveryListedInstruction) {
  auto cf = parse_ok("FROM " + kBase +
                     "\nRUN a\nCOPY a /b\nADD a /b\nENV A=1\nARG B=2\nWORKDIR /w\nUSER 1:1\n"
                     "SHELL [\"/bin/sh\",\"-c\"]\nENTRYPOINT [\"/e\"]\nCMD [\"c\"]\nLABEL a=b\nEXPOSE 80/tcp 53/udp\n"
                     "STOPSIGNAL SIGTERM\nVOLUME /data\nHEALTHCHECK NONE\n");
  EXPECT_EQ(cf.stages[0].instructions.size(), 15u);
}

TEST(ContainerfileParse, CrLfLineEndings) {
  auto cf = parse_ok("FROM " + kBase + "\r\nRUN a \\\r\n  b\r\n");
  EXPECT_THAT(cf.stages[0].instructions[0].args, ElementsAre("a   b"));
}

// ---- refusals, each with its line ----

TEST(ContainerfileRefuse, UnpinnedFrom) {
  EXPECT_THAT(refusal("# c\nFROM debian:12\n", 2), HasSubstr("not pinned"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nRUN a\nFROM busybox AS x\n", 3), HasSubstr("not pinned"));
  refusal("ARG V=12\nFROM debian:${V}\n", 2);
  refusal("FROM Debian@" + kPin + "\n", 1);
}

TEST(ContainerfileRefuse, AddOfAUrl) {
  auto msg = refusal("FROM " + kBase + "\nRUN a\nADD https://example.org/x.tar.gz /x\n", 3);
  EXPECT_THAT(msg, HasSubstr("network"));
  refusal("FROM " + kBase + "\nADD git@github.com:a/b.git /x\n", 2);
  refusal("FROM " + kBase + "\nADD [\"http://example.org/a\", \"/a\"]\n", 2);
  refusal("FROM " + kBase + "\nADD --checksum=sha256:00 a /a\n", 2);
}

TEST(ContainerfileRefuse, RunMountSecretSshCache) {
  for (const char* type : {"secret,id=x", "ssh", "cache,target=/root/.cache"}) {
    auto msg = refusal("FROM " + kBase + "\n\nRUN --mount=type=" + std::string(type) + " make\n", 3);
    EXPECT_THAT(msg, HasSubstr("refused"));
  }
  EXPECT_THAT(refusal("FROM " + kBase + "\nRUN --mount=target=/x make\n", 2), HasSubstr("type=bind"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nRUN --network=host make\n", 2), HasSubstr("no network"));
  parse_ok("FROM " + kBase + "\nRUN --network=none make\n");
}

TEST(ContainerfileRefuse, Onbuild) {
  EXPECT_THAT(refusal("FROM " + kBase + "\nONBUILD RUN a\n", 2), HasSubstr("ONBUILD"));
}

TEST(ContainerfileRefuse, UnknownInstructionsAndFlags) {
  EXPECT_THAT(refusal("FROM " + kBase + "\nMAINTAINER me\n", 2), HasSubstr("MAINTAINER"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nRUN a \\\n b\nFOO bar\n", 4), HasSubstr("FOO"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nCOPY --link a /b\n", 2), HasSubstr("--link"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nADD --from=x a /b\n", 2), HasSubstr("--from"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nENV --x=1 A=1\n", 2), HasSubstr("--x"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nRUN --security=insecure a\n", 2), HasSubstr("--security"));
  EXPECT_THAT(refusal("FROM --foo=1 " + kBase + "\n", 1), HasSubstr("--foo"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nCOPY --chown a /b\n", 2), HasSubstr("needs a value"));
  EXPECT_THAT(refusal("FROM " + kBase + "\nCOPY --from=a --from=b a /b\n", 2), HasSubstr("twice"));
}

TEST(ContainerfileRefuse, InstructionBeforeFrom) {
  EXPECT_THAT(refusal("ARG A=1\nRUN echo\nFROM " + kBase + "\n", 2), HasSubstr("before the first FROM"));
  EXPECT_THAT(parse_containerfile("ARG A\n", "Containerfile").status().message(), HasSubstr("no FROM"));
}

TEST(ContainerfileRefuse, BadCopyFrom) {
  EXPECT_THAT(refusal("FROM " + kBase + " AS a\nFROM scratch\nCOPY --from=b x /x\n", 3), HasSubstr("--from=b"));
  refusal("FROM " + kBase + " AS a\nCOPY --from=a x /x\n", 2);  // itself
  refusal("FROM " + kBase + "\nCOPY --from=0 x /x\n", 2);
  refusal("FROM scratch\nCOPY --from=busybox:latest x /x\n", 2);
}

TEST(ContainerfileRefuse, MissingArguments) {
  EXPECT_THAT(refusal("FROM " + kBase + "\nCOPY onlyone\n", 2), HasSubstr("source and a destination"));
  refusal("FROM " + kBase + "\nRUN\n", 2);
  refusal("FROM " + kBase + "\nWORKDIR\n", 2);
  refusal("FROM " + kBase + "\nENV A\n", 2);
  refusal("FROM " + kBase + "\nENV =x\n", 2);
  refusal("FROM " + kBase + "\nUSER a b\n", 2);
  refusal("FROM " + kBase + "\nSHELL /bin/sh -c\n", 2);
  refusal("FROM " + kBase + "\nHEALTHCHECK\n", 2);
  refusal("FROM " + kBase + "\nHEALTHCHECK --interval=soon CMD a\n", 2);
  refusal("FROM " + kBase + "\nFROM\n", 2);
  refusal("FROM " + kBase + " AS\n", 1);
  refusal("FROM " + kBase + "\nCOPY --chmod=u+x a /b\n", 2);
}

TEST(ContainerfileRefuse, StageNames) {
  EXPECT_THAT(refusal("FROM " + kBase + " AS a\nFROM " + kBase + " AS A\n", 2), HasSubstr("already used on line 1"));
  refusal("FROM " + kBase + " AS 1abc\n", 1);
}

TEST(ContainerfileRefuse, Directives) {
  EXPECT_THAT(refusal("# escape=x\nFROM " + kBase + "\n", 1), HasSubstr("escape"));
  EXPECT_THAT(refusal("# escape=`\n# escape=\\\nFROM " + kBase + "\n", 2), HasSubstr("twice"));
}

TEST(ContainerfileRefuse, Heredocs) {
  refusal("FROM " + kBase + "\nRUN <<EOF\necho\nEOF\n", 2);
  refusal("FROM " + kBase + "\nCOPY <<-'X' /f\n", 2);
  parse_ok("FROM " + kBase + "\nRUN cat <<< word\n");
}

TEST(ContainerfileRefuse, SubstitutionSyntax) {
  refusal("FROM " + kBase + "\nENV A=\"unterminated\n", 2);
  refusal("FROM " + kBase + "\nWORKDIR ${A\n", 2);
  refusal("FROM " + kBase + "\nLABEL a=${A%x}\n", 2);
  refusal("ARG A=${B:?B is required}\nFROM " + kBase + "\n", 1);
}

// A Containerfile comes from the commit, so from whoever wrote it: a deep ${A:-${A:-…}} nesting recursed until
// the stack ran out (a node crashed on 120 KB), and size is bounded before any parsing.
TEST(ContainerfileRefuse, DeepNestingAndHugeFiles) {
  auto nested = [](int depth) {
    std::string w;
    for (int i = 0; i < depth; ++i) w += "${A:-";
    w += "x";
    for (int i = 0; i < depth; ++i) w += "}";
    return w;
  };
  Containerfile cf = parse_ok("FROM " + kBase + "\nENV B=" + nested(60) + "\n");
  ASSERT_EQ(cf.stages.size(), 1u);
  EXPECT_THAT(refusal("FROM " + kBase + "\nENV B=" + nested(20'000) + "\n", 2),
              HasSubstr("substitutions nested deeper than 64"));
  EXPECT_EQ(*substitute_word(nested(64), {}), "x");
  EXPECT_FALSE(substitute_word(nested(65), {}).ok());

  std::string huge = "FROM " + kBase + "\n" + std::string(1 << 20, '#') + "\n";
  auto too_big = parse_containerfile(huge, "Containerfile", {});
  ASSERT_FALSE(too_big.ok());
  EXPECT_THAT(too_big.status().message(), HasSubstr("Containerfile: " + std::to_string(huge.size()) +
                                                    " bytes; a Containerfile may have at most 1048576"));
  auto ignore = DockerIgnore::parse(std::string((1 << 20) + 1, 'a'), ".dockerignore");
  ASSERT_FALSE(ignore.ok());
  EXPECT_THAT(ignore.status().message(), HasSubstr(".dockerignore: 1048577 bytes"));
}

// Each global ARG sees the ones before it (kept as they are read, not rebuilt for each: 32,000 ARGs took 7 s).
TEST(Containerfile, ManyGlobalArgsEachSeeTheOnesBefore) {
  std::string text = "ARG A0=" + kBase + "\n";
  for (int i = 1; i <= 5'000; ++i) text += "ARG A" + std::to_string(i) + "=$A" + std::to_string(i - 1) + "\n";
  text += "FROM ${A5000}\n";
  Containerfile cf = parse_ok(text);
  ASSERT_EQ(cf.stages.size(), 1u);
  EXPECT_EQ(cf.stages[0].from, kBase);
}

// ARG lines could double a value until the parser ran out of memory (40 `ARG A=$A$A` asked for 16 TiB). What one
// instruction substitutes stops at 1 MiB, the global ARGs together at 4 MiB, each refused at its line before
// the bytes are allocated.
TEST(ContainerfileRefuse, SubstitutionCannotGrowPastItsBounds) {
  std::string text = "ARG A=" + std::string(16, 'a') + "\n";
  for (int i = 0; i < 16; ++i) text += "ARG A=$A$A\n";  // line 17 makes 1 MiB, the most allowed
  Containerfile cf = parse_ok(text + "FROM scratch\n");
  ASSERT_FALSE(cf.global_args.empty());
  EXPECT_EQ(cf.global_args.back().value->size(), kMaxSubstitutedBytes);
  EXPECT_THAT(refusal(text + "ARG A=$A$A\nFROM scratch\n", 18),
              HasSubstr("Containerfile:18: substitution makes more than 1048576 bytes"));
  EXPECT_THAT(refusal(text + "ARG B=x$A\nFROM scratch\n", 18), HasSubstr("more than 1048576 bytes"));
  EXPECT_THAT(refusal(text + "ARG B=$A C=$A\nFROM scratch\n", 18), HasSubstr("more than 1048576 bytes"));
  EXPECT_THAT(refusal(text + "ARG B=$A\nARG C=$A\nARG D=$A\nFROM scratch\n", 20),
              HasSubstr("Containerfile:20: ARG D: the global ARGs would hold 4194411 bytes, more than 4194304"));

  const std::map<std::string, std::string> big = {{"A", std::string(600'000, 'a')}};
  EXPECT_TRUE(substitute_word("$A", big).ok());
  EXPECT_FALSE(substitute_word("$A$A", big).ok());
  EXPECT_FALSE(substitute_word("${B:-$A$A}", big).ok());
  EXPECT_FALSE(substitute_words("$A $A", big).ok());
  EXPECT_FALSE(parse_pairs("x=$A y=$A", big).ok());
  EXPECT_THAT(substitute_word("${A}${A}", big).status().message(), HasSubstr("more than 1048576 bytes"));
}

TEST(ContainerfileRefuse, UndeclaredBuildArg) {
  auto cf = parse_containerfile("FROM " + kBase + "\nARG A\n", "Containerfile", {{"B", "1"}});
  ASSERT_FALSE(cf.ok());
  EXPECT_THAT(cf.status().message(), HasSubstr("build arg B is not declared"));
  parse_ok("FROM " + kBase + "\nARG A\n", {{"A", "1"}});
}

// ---- substitution ----

TEST(Substitution, Forms) {
  std::map<std::string, std::string> v = {{"A", "x"}, {"E", ""}};
  auto sub = [&](const std::string& w) { return *substitute_word(w, v); };
  EXPECT_EQ(sub("$A-${A}-$B-${B}"), "x-x--");
  EXPECT_EQ(sub("${A:-d} ${E:-d} ${U:-d} ${E-d} ${U-d}"), "x d d  d");
  EXPECT_EQ(sub("${A:+y} ${E:+y} ${U:+y} ${E+y} ${U+y}"), "y   y ");
  EXPECT_EQ(sub("${A:?m} ${E?m}"), "x ");
  EXPECT_EQ(sub("${U:-${A}z}"), "xz");
  EXPECT_EQ(sub("'$A' \"$A\" \\$A $ $. a$"), "$A x $A $ $. a$");
  EXPECT_EQ(sub("\"a\\\"b\\$A\\n\""), "a\"b$A\\n");
  EXPECT_EQ(sub("${U:-a b}"), "a b");
  EXPECT_THAT(substitute_word("${U:?needed}", v).status().message(), HasSubstr("U: needed"));
  EXPECT_THAT(substitute_word("${E:?}", v).status().message(), HasSubstr("E: is not set"));
  EXPECT_FALSE(substitute_word("${A", v).ok());
  EXPECT_FALSE(substitute_word("${}", v).ok());
  EXPECT_FALSE(substitute_word("${A/x/y}", v).ok());
  EXPECT_FALSE(substitute_word("'open", v).ok());
}

TEST(Substitution, EscapeCharacterIsConfigurable) {
  std::map<std::string, std::string> v = {{"A", "x"}};
  EXPECT_EQ(*substitute_word("`$A\\$A", v, '`'), "$A\\x");
}

TEST(Substitution, WordsSplitAtUnquotedBlanks) {
  std::map<std::string, std::string> v = {{"A", "x y"}};
  EXPECT_THAT(*substitute_words("  a \"b c\" '' $A d\\ e ", v), ElementsAre("a", "b c", "", "x y", "d e"));
}

TEST(Pairs, NewAndLegacyForms) {
  std::map<std::string, std::string> v = {{"A", "1"}};
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT(*parse_pairs("X=$A Y=\"a b\" Z=c\\ d", v), ElementsAre(P{"X", "1"}, P{"Y", "a b"}, P{"Z", "c d"}));
  EXPECT_THAT(*parse_pairs("X  hello $A  world", v), ElementsAre(P{"X", "hello 1  world"}));
  EXPECT_THAT(*parse_pairs("\"my label\"=v", v), ElementsAre(P{"my label", "v"}));
  EXPECT_FALSE(parse_pairs("X=1 Y", v).ok());
  EXPECT_FALSE(parse_pairs("X", v).ok());
}

TEST(UrlSource, SchemesAndGitRemotes) {
  EXPECT_TRUE(is_url_source("https://example.org/a"));
  EXPECT_TRUE(is_url_source("git+ssh://host/x"));
  EXPECT_TRUE(is_url_source("git@github.com:org/repo.git"));
  EXPECT_FALSE(is_url_source("src/a:b"));
  EXPECT_FALSE(is_url_source("a@b/c:d"));
  EXPECT_FALSE(is_url_source("files/"));
}

// ---- .dockerignore ----

TEST(DockerIgnoreTest, PatternsExceptionsAndParents) {
  auto ig =
      DockerIgnore::parse("# comment\n/build\n*.log\n**/*.tmp\n!keep.log\ndocs/**\n!docs/README.md\n", ".dockerignore");
  ASSERT_TRUE(ig.ok());
  EXPECT_TRUE(ig->excluded("build"));
  EXPECT_TRUE(ig->excluded("build/a/b.o"));
  EXPECT_TRUE(ig->excluded("x.log"));
  EXPECT_FALSE(ig->excluded("keep.log"));
  EXPECT_FALSE(ig->excluded("src/x.log"));  // `*` does not cross '/'
  EXPECT_TRUE(ig->excluded("src/deep/x.tmp"));
  EXPECT_TRUE(ig->excluded("docs/a.md"));
  EXPECT_FALSE(ig->excluded("docs/README.md"));
  EXPECT_FALSE(ig->excluded("src/main.c"));
}

TEST(DockerIgnoreTest, PatternLeavingTheContextIsRefused) {
  auto ig = DockerIgnore::parse("ok\n../secret\n", ".dockerignore");
  ASSERT_FALSE(ig.ok());
  EXPECT_THAT(ig.status().message(), HasSubstr(".dockerignore:2:"));
}

}  // namespace
}  // namespace quorate::builder
