// What the C++ benchmarks print, the way bench/compare.py prints it for the shell ones: repetitions that
// alternate with their baseline, min/median/max of each, the median of the per-round ratios with their range,
// CPU seconds beside wall seconds, the load average, and a flag when the noise is larger than the effect.
#pragma once

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bench {

inline double cpu_seconds() {  // of the whole process, every thread
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline double wall_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "unknown";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

// A span of `wall` seconds in which this process used `cpu` CPU-seconds cannot be shorter than cpu / cores: if it
// is, the timing is an artifact, never a result. Prints "FLAG IMPOSSIBLE ..." naming `what` and returns false then.
inline bool check_possible(const char* what, double wall, double cpu) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores < 1) cores = 1;
  if (wall >= cpu / static_cast<double>(cores) * 0.98) return true;
  std::printf("  FLAG IMPOSSIBLE: %s took %.3f s wall for %.3f CPU-s on %ld cores (a timing artifact; no figure)\n",
              what, wall, cpu, cores);
  return false;
}

struct Spread {
  double min = 0, median = 0, max = 0;
};

inline Spread spread(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  double median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {v.front(), median, v.back()};
}

// "12345/s median (12000-12600)"
inline std::string describe(const std::vector<double>& v, const char* unit, const char* format = "%.0f") {
  Spread s = spread(v);
  std::string f = std::string(format) + "%s median (" + format + "-" + format + ")";
  char buf[160];
  std::snprintf(buf, sizeof buf, f.c_str(), s.median, unit, s.min, s.max);
  return buf;
}

// The per-round ratios ours/baseline: the median with its range, or, when the rounds disagree on which side of
// 1.0 the ratio lies or spread wider than its distance from 1.0 (the effect), "noise larger than the effect".
// Then, when `goal` > 0 (ours should reach at least goal x the baseline), whether every round, only the
// median, or no round met it. Returns whether every round met the goal (or, without a goal, a ratio was quoted).
inline bool print_ratio(const char* label, const std::vector<double>& ratios, double goal = 0) {
  Spread s = spread(ratios);
  bool straddles = s.min < 1.0 && 1.0 < s.max;
  bool too_wide = (s.max - s.min) > std::abs(s.median - 1.0);
  if (straddles || too_wide) {
    std::printf("  %s: noise larger than the effect; no ratio quoted (per round median %.3f, %.3f-%.3f)", label,
                s.median, s.min, s.max);
  } else {
    std::printf("  %s: %.3f median of %zu rounds (%.3f-%.3f)", label, s.median, ratios.size(), s.min, s.max);
  }
  if (goal <= 0) {
    std::printf("\n");
    return !(straddles || too_wide);
  }
  size_t met = 0;
  for (double r : ratios) met += r >= goal;
  std::printf("; goal >= %.2f: %s (%zu of %zu rounds)\n", goal,
              met == ratios.size() ? "met in every round"
              : s.median >= goal   ? "met by the median only"
                                   : "NOT met",
              met, ratios.size());
  return met == ratios.size();
}

}  // namespace bench
