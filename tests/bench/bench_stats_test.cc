// The C++ benchmarks' shared reporting (bench/bench_stats.h): which ratios it quotes, which it calls noise, how
// it judges a goal and when it flags a run as impossible. A benchmark's figures are only as honest as these rules.
#include "bench/bench_stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bench::Comparison comparison(const std::vector<double>& a_walls, const std::vector<double>& b_walls) {
  bench::Comparison c;
  c.title = "t", c.a_name = "ours", c.b_name = "baseline", c.unit = "items";
  c.pairs = static_cast<int>(a_walls.size());
  for (double w : a_walls) c.a.push_back({w, w, 100});
  for (double w : b_walls) c.b.push_back({w, w, 100});
  return c;
}

std::string printed(const std::function<void()>& f) {
  testing::internal::CaptureStdout();
  f();
  return testing::internal::GetCapturedStdout();
}

TEST(BenchStats, SpreadIsMinMedianMax) {
  auto odd = bench::spread({3, 1, 2});
  EXPECT_EQ(odd.min, 1);
  EXPECT_EQ(odd.median, 2);
  EXPECT_EQ(odd.max, 3);
  EXPECT_EQ(bench::spread({4, 1, 2, 3}).median, 2.5);
}

TEST(BenchStats, RatiosThatStraddleOneOrSpreadWiderThanTheEffectAreNoise) {
  EXPECT_TRUE(bench::noise(bench::spread({0.95, 1.02, 1.04})));  // straddles 1.0
  EXPECT_TRUE(bench::noise(bench::spread({1.05, 1.10, 1.30})));  // spread 0.25 > effect 0.10
  EXPECT_FALSE(bench::noise(bench::spread({0.48, 0.50, 0.52})));
  EXPECT_FALSE(bench::noise(bench::spread({1.40, 1.45, 1.50})));
}

TEST(BenchStats, ReportQuotesAClearRatioAndJudgesTheGoalPerPair) {
  // A takes 2 s where B takes 1 s for the same items: A does 0.5x B's rate, in every pair.
  auto c = comparison({2.0, 2.0, 2.1, 1.9, 2.0}, {1.0, 1.0, 1.0, 1.0, 1.0});
  bool met = true;
  std::string out = printed([&] { met = bench::report(c, 0.45); });
  EXPECT_TRUE(met);
  EXPECT_THAT(out, HasSubstr("A/B per pair: median 0.500"));
  EXPECT_THAT(out, HasSubstr("goal A >= 0.45x B (per wall second): met in every pair (5 of 5 pairs)"));
  EXPECT_THAT(out, Not(HasSubstr("FLAG")));

  out = printed([&] { met = bench::report(c, 0.51); });
  EXPECT_FALSE(met);
  EXPECT_THAT(out, HasSubstr("NOT met (1 of 5 pairs)"));
}

TEST(BenchStats, ReportRefusesToQuoteNoiseAndFlagsFewPairs) {
  auto c = comparison({1.0, 0.9, 1.1}, {1.0, 1.0, 1.0});
  bool quoted = true;
  std::string out = printed([&] { quoted = bench::report(c); });
  EXPECT_FALSE(quoted);
  EXPECT_THAT(out, HasSubstr("noise larger than the effect; no ratio quoted"));
  EXPECT_THAT(out, HasSubstr("FLAG NOISE"));
  EXPECT_THAT(out, HasSubstr("FLAG FEW: only 3 pair(s)"));
}

TEST(BenchStats, AWallTimeBelowCpuSecondsOverCoresIsImpossible) {
  double cores = static_cast<double>(bench::cores());
  bench::Run r{1.0, 1.0 * cores * 1.5, 100};  // more CPU-seconds than every core could give in that wall time
  EXPECT_TRUE(r.impossible());
  EXPECT_FALSE((bench::Run{1.0, 1.0 * cores, 100}).impossible());

  auto c = comparison({1.0, 1.0, 1.0, 1.0, 1.0}, {2.0, 2.0, 2.0, 2.0, 2.0});
  c.a[2].cpu = cores * 1.5;
  std::string out = printed([&] { bench::report(c); });
  EXPECT_THAT(out, HasSubstr("FLAG IMPOSSIBLE: a run of ours took 1.000 s wall"));

  out = printed([&] { EXPECT_FALSE(bench::check_possible("phase", 1.0, cores * 1.5)); });
  EXPECT_THAT(out, HasSubstr("FLAG IMPOSSIBLE: phase took 1.000 s wall"));
  EXPECT_TRUE(bench::check_possible("phase", 1.0, cores * 0.5));
}

}  // namespace
