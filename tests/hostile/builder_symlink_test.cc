// Issue 11, item 4: symlinks a run step leaves in $OUT reach the image as symlinks with their text as written,
// whatever they point at on the build host (a sibling, a directory, a host path, nothing at all).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "hostile/builder_fixture.h"

namespace quorate::builder::hostile {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kLinks[] =
    "set -e; mkdir -p \"$OUT/lib\" \"$OUT/share/doc\"; echo lib > \"$OUT/lib/libfoo.so.1\"; "
    "echo readme > \"$OUT/share/doc/README\"; "
    "ln -s libfoo.so.1 \"$OUT/lib/libfoo.so\"; "       // a sibling file
    "ln -s share/doc \"$OUT/docs\"; "                  // a directory of the output
    "ln -s /usr/bin \"$OUT/hostbin\"; "                // an absolute host path that exists
    "ln -s ../../../../../../../../etc \"$OUT/up\"; "  // a relative path out of $OUT that exists
    "ln -s /nonexistent/quorate \"$OUT/dangling\"";    // a path no host has

class SymlinkOutput : public HostileBuild, public ::testing::WithParamInterface<Sandbox> {};

TEST_P(SymlinkOutput, EveryLinkIsKeptAsALinkWithItsText) {
  auto commit = commit_recipe(run_recipe(kLinks, "/opt/app"));
  auto r = build(options(commit, GetParam()));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  std::string listing = list_layers(*r);
  EXPECT_THAT(listing, HasSubstr("opt/app/lib/libfoo.so -> libfoo.so.1\n"));
  EXPECT_THAT(listing, HasSubstr("opt/app/lib/libfoo.so.1\n"));
  EXPECT_THAT(listing, HasSubstr("opt/app/docs -> share/doc\n"));
  EXPECT_THAT(listing, HasSubstr("opt/app/share/doc/README\n"));
  EXPECT_THAT(listing, HasSubstr("opt/app/hostbin -> /usr/bin\n"));
  EXPECT_THAT(listing, HasSubstr("opt/app/up -> ../../../../../../../../etc\n"));
  EXPECT_THAT(listing, HasSubstr("opt/app/dangling -> /nonexistent/quorate\n"));
  EXPECT_THAT(listing, Not(HasSubstr("opt/app/hostbin/"))) << "host files reached the image";
  EXPECT_THAT(listing, Not(HasSubstr("opt/app/docs/"))) << "a directory link was followed";
}

TEST_P(SymlinkOutput, TheImageDoesNotDependOnWhatTheHostHas) {
  // The same commit twice gives the same digest; the link to a missing path changes nothing.
  auto commit = commit_recipe(run_recipe(kLinks, "/opt/app"));
  auto a = build(options(commit, GetParam()));
  auto b = build(options(commit, GetParam()));
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().to_string() << b.status().to_string();
  EXPECT_EQ(a->manifest_digest, b->manifest_digest);
}

INSTANTIATE_TEST_SUITE_P(Sandboxes, SymlinkOutput, ::testing::Values(Sandbox::kBubblewrap, Sandbox::kNone),
                         [](const auto& p) { return std::string(sandbox_name(p.param)); });

}  // namespace
}  // namespace quorate::builder::hostile
