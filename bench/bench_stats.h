// What the C++ benchmarks print, the way bench/compare.py prints it for the shell ones: repetitions that
// alternate with their baseline, min/median/max of each, the median of the per-round ratios with their range,
// CPU seconds beside wall seconds, the load average, and a flag when the noise is larger than the effect.
//
// The one way to compare (attest_bench, quorum_bench, network_bench): bench::alternate() runs a warm-up of each
// side, then PAIRS pairs A B A B ..., each run returning a bench::Run (wall, CPU seconds, items done, timed
// with bench::Timer); bench::report() prints both sides and the per-pair ratios of their rates (items per wall
// second and per CPU second), flags runs that are impossible (wall < CPU / cores), noise larger than the
// effect, and fewer than 5 pairs, and says whether a goal was met in every pair, by the median only, or not.
#pragma once

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
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

// Whether per-pair (or per-round) ratios say nothing: they disagree on which side of 1.0 the ratio lies, or spread
// wider than the median's distance from 1.0 (the effect). bench/compare.py's judge() applies the same rule.
inline bool straddles(const Spread& s) { return s.min < 1.0 && 1.0 < s.max; }
inline bool noise(const Spread& s) { return straddles(s) || (s.max - s.min) > std::abs(s.median - 1.0); }

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
  if (noise(s)) {
    std::printf("  %s: noise larger than the effect; no ratio quoted (per round median %.3f, %.3f-%.3f)", label,
                s.median, s.min, s.max);
  } else {
    std::printf("  %s: %.3f median of %zu rounds (%.3f-%.3f)", label, s.median, ratios.size(), s.min, s.max);
  }
  if (goal <= 0) {
    std::printf("\n");
    return !noise(s);
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

inline long cores() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n;
}

// Where `path` lives, as bench/compare.py says it: "PATH on tmpfs (memory), mounted at M" or "PATH on disk
// (ext4), mounted at M" (the longest mount point in /proc/self/mounts that holds it).
inline std::string where(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  std::string p = real != nullptr ? real : path;
  std::free(real);
  std::ifstream mounts("/proc/self/mounts");
  std::string line, best, kind = "unknown";
  while (std::getline(mounts, line)) {
    std::istringstream f(line);
    std::string dev, mnt, type;
    if (!(f >> dev >> mnt >> type)) continue;
    std::string prefix = mnt == "/" ? "/" : mnt + "/";
    bool inside = p == mnt || p.rfind(prefix, 0) == 0;
    if (inside && mnt.size() >= best.size()) best = mnt, kind = type;
  }
  std::string label = kind == "tmpfs" ? "tmpfs (memory)" : kind == "unknown" ? "unknown" : "disk (" + kind + ")";
  return path + " on " + label + ", mounted at " + (best.empty() ? "?" : best);
}

// One timed run: `items` units of work (verifications, attestations) in `wall` seconds, using `cpu` CPU-seconds
// of this process (every thread of it).
struct Run {
  double wall = 0, cpu = 0, items = 0;
  double per_wall() const { return wall > 0 ? items / wall : 0; }
  double per_cpu() const { return cpu > 0 ? items / cpu : 0; }
  double busy() const { return wall > 0 ? cpu / wall : 0; }
  bool impossible() const { return wall < cpu / static_cast<double>(cores()) * 0.98; }
};

// Starts at construction; stop(items) gives the Run of the span since then. A run function may do untimed setup
// before constructing its Timer and untimed teardown after stop().
class Timer {
 public:
  Timer() : wall0_(wall_seconds()), cpu0_(cpu_seconds()) {}
  Run stop(double items) const { return {wall_seconds() - wall0_, cpu_seconds() - cpu0_, items}; }

 private:
  double wall0_, cpu0_;
};

struct Comparison {
  std::string title;
  std::string a_name, b_name;  // A: ours; B: the named baseline
  std::string unit;            // what an item is ("verifications", "attestations")
  std::string files;           // where the files live (bench::where), empty when nothing is on a file system
  std::string load_before, load_after;
  int warmup = 0, pairs = 0;
  std::vector<Run> a, b;
};

// Warm-up runs of each (not counted), then `pairs` pairs A B A B ...; progress on stderr.
inline Comparison alternate(const std::string& title, const std::string& a_name, const std::function<Run()>& a,
                            const std::string& b_name, const std::function<Run()>& b, int pairs, int warmup = 1,
                            const std::string& unit = "items", const std::string& files = "") {
  Comparison c{title, a_name, b_name, unit, files, load_average(), "", warmup, pairs, {}, {}};
  auto note = [](const char* what, const std::string& name, const Run& r) {
    std::fprintf(stderr, "  %-5s %-34s wall %8.3f s  cpu %8.3f s  %10.0f/s%s\n", what, name.substr(0, 34).c_str(),
                 r.wall, r.cpu, r.per_wall(), r.impossible() ? "  IMPOSSIBLE" : "");
  };
  std::fprintf(stderr, "== %s\n", title.c_str());
  for (int i = 0; i < warmup; ++i) {
    note("warm", a_name, a());
    note("warm", b_name, b());
  }
  for (int i = 0; i < pairs; ++i) {
    c.a.push_back(a());
    note("run", a_name, c.a.back());
    c.b.push_back(b());
    note("run", b_name, c.b.back());
  }
  c.load_after = load_average();
  return c;
}

enum class Basis { kWall, kCpu };

// Prints the comparison. Ratios are A's rate / B's rate per pair (above 1: A does more per second). `goal` > 0:
// A's rate should reach at least goal x B's on `basis`. Returns whether every pair met the goal (or, without a
// goal, whether the wall ratio could be quoted).
inline bool report(const Comparison& c, double goal = 0, Basis basis = Basis::kWall) {
  std::vector<std::string> flags;
  std::printf("%s\n", c.title.c_str());
  if (!c.files.empty()) std::printf("  files: %s\n", c.files.c_str());
  std::printf(
      "  cores %ld; load average before %s, after %s; %d warm-up run(s) each, then %d alternating pairs "
      "(A B A B ...)\n",
      cores(), c.load_before.c_str(), c.load_after.c_str(), c.warmup, c.pairs);
  auto side = [&](const char* key, const std::string& name, const std::vector<Run>& runs) {
    std::vector<double> wall, cpu, busy, per_wall, per_cpu;
    for (const Run& r : runs) {
      wall.push_back(r.wall), cpu.push_back(r.cpu), busy.push_back(r.busy());
      per_wall.push_back(r.per_wall()), per_cpu.push_back(r.per_cpu());
      if (r.impossible()) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "IMPOSSIBLE: a run of %s took %.3f s wall for %.3f CPU-s on %ld cores",
                      name.c_str(), r.wall, r.cpu, cores());
        flags.push_back(buf);
      }
    }
    std::printf("  %s %s\n      wall %s; cpu %s; %.2f cores busy (median cpu/wall)\n      rate %s; %s\n", key,
                name.c_str(), describe(wall, " s", "%.3f").c_str(), describe(cpu, " CPU-s", "%.3f").c_str(),
                spread(busy).median, describe(per_wall, (" " + c.unit + "/s").c_str()).c_str(),
                describe(per_cpu, (" " + c.unit + "/CPU-s").c_str()).c_str());
  };
  side("A", c.a_name, c.a);
  side("B", c.b_name, c.b);
  std::vector<double> r_wall, r_cpu;
  for (size_t i = 0; i < c.a.size() && i < c.b.size(); ++i) {
    if (c.b[i].per_wall() > 0) r_wall.push_back(c.a[i].per_wall() / c.b[i].per_wall());
    if (c.b[i].per_cpu() > 0) r_cpu.push_back(c.a[i].per_cpu() / c.b[i].per_cpu());
  }
  bool quoted = true;
  auto ratio_line = [&](const char* label, const std::vector<double>& r) {
    if (r.empty()) return;
    Spread s = spread(r);
    if (noise(s)) {
      std::string why = straddles(s) ? "pair ratios straddle 1.0" : "ratio spread exceeds the effect";
      std::printf("  %s: noise larger than the effect; no ratio quoted (%s; A/B per pair: median %.3f (%.3f-%.3f))\n",
                  label, why.c_str(), s.median, s.min, s.max);
      flags.push_back(std::string("NOISE: ") + label + ": " + why + "; no ratio quoted");
      if (&r == &r_wall) quoted = false;
    } else {
      std::printf("  %s: A/B per pair: median %.3f (%.3f-%.3f) -> A does %.2fx B's rate\n", label, s.median, s.min,
                  s.max, s.median);
    }
  };
  ratio_line("ratio of rates per wall second", r_wall);
  ratio_line("ratio of rates per CPU second", r_cpu);
  bool every = quoted;
  if (goal > 0) {
    const std::vector<double>& r = basis == Basis::kWall ? r_wall : r_cpu;
    size_t met = 0;
    for (double x : r) met += x >= goal;
    every = met == r.size() && !r.empty();
    std::printf("  goal A >= %.2fx B (per %s second): %s (%zu of %zu pairs)\n", goal,
                basis == Basis::kWall ? "wall" : "CPU",
                every                      ? "met in every pair"
                : spread(r).median >= goal ? "met by the median only"
                                           : "NOT met",
                met, r.size());
  }
  if (c.pairs < 5)
    flags.push_back("FEW: only " + std::to_string(c.pairs) + " pair(s); quote no figure from fewer than 5");
  for (const auto& f : flags) std::printf("  FLAG %s\n", f.c_str());
  return every;
}

}  // namespace bench
