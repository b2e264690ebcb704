// The scale benchmark at CI size (bench/scale_bench.py): 10 load nodes x 500 subjects over CURVE against the
// real `quorate quorum`, with one rogue, a SIGSTOPped node, a SIGKILLed and restarted node, a partitioned node
// (iptables when root, else skipped and said so) and a SIGKILLed and restarted verifier. Asserts that nothing
// is lost, duplicated or wrong, that every honest subject is accepted with the rogue dissenting, and that
// revisions per subject strictly increase in what a subscriber saw. No time is asserted.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <set>
#include <string>

#include "support/test_util.h"

namespace quorate::testing {
namespace {

std::string scale_load_node_bin() {
  if (const char* p = std::getenv("QUORATE_LOAD_NODE"); p && *p) return p;
  return QUORATE_LOAD_NODE_BIN;
}

TEST(Scale, TenNodesWithEveryFaultLoseNothingAndDecideRight) {
  ScratchDir dir;
  const int nodes = 10, subjects = 500;
  std::string cmd = "python3 " + sh((source_dir() / "bench" / "scale_bench.py").string()) + " --quorate " +
                    sh(quorate_bin()) + " --load-node " + sh(scale_load_node_bin()) + " --nodes " +
                    std::to_string(nodes) + " --subjects " + std::to_string(subjects) +
                    " --rate 100 --fault-start 1 --fault-gap 0.7 --partition-seconds 3 --stop-seconds 2"
                    " --netns off --openssl-seconds 1 --timeout 90 --prepare-timeout 60 --work " +
                    sh((dir / "work").string()) + " --json " + sh((dir / "report.json").string());
  auto r = run(cmd);
  auto report = nlohmann::json::parse(slurp(dir / "report.json"), nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << r.out;
  SCOPED_TRACE(r.out);

  // Every fault was applied (the partition needs root and iptables on loopback).
  std::set<std::string> applied;
  for (const auto& f : report["faults"]) {
    if (!f.contains("skipped")) {
      applied.insert(f["fault"].get<std::string>());
    } else {
      EXPECT_EQ(f["fault"], "partition") << f.dump();
    }
  }
  for (const char* f : {"sigstop", "sigcont", "kill_node", "restart_node", "kill_verifier", "restart_verifier"}) {
    EXPECT_TRUE(applied.count(f)) << f;
  }
  if (::geteuid() == 0) {
    EXPECT_TRUE(applied.count("partition"));
  }
  EXPECT_FALSE(report["timed_out"].get<bool>());

  // Nothing lost, duplicated, rejected.
  const auto& at = report["attestations"];
  EXPECT_EQ(at["expected"], nodes * subjects);
  EXPECT_EQ(at["stored"], nodes * subjects);
  EXPECT_EQ(at["lost"], 0);
  EXPECT_EQ(at["duplicated"], 0);
  EXPECT_EQ(at["rejections"], 0);

  // Every subject decided right: accepted with the honest digest, all nine honest nodes agreeing, the rogue
  // named as dissenter, nobody missing; asked through the query socket after the run.
  const auto& d = report["decisions"];
  EXPECT_EQ(d["right"], subjects);
  EXPECT_EQ(d["wrong"], 0);
  EXPECT_EQ(d["missing"], 0);
  EXPECT_EQ(d["partial"], 0);
  EXPECT_EQ(d["rogue_dissents"], subjects);
  EXPECT_EQ(report["watch"]["wrong_seen"], 0);

  // What a subscriber saw: revisions strictly increase per subject, across the verifier's restart (they are
  // persisted in the store; before that, a restarted verifier published revision 2 again with other votes).
  EXPECT_EQ(report["watch"]["revisions_not_increasing"], 0) << report["watch"]["examples"].dump();
  // And one revision number never carries two contents (subscription and query answers together).
  EXPECT_EQ(report["watch"]["revision_conflicts"], 0) << report["watch"]["examples"].dump();
  EXPECT_EQ(r.exit_code, 0);
}

}  // namespace
}  // namespace quorate::testing
