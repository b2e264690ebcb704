#!/usr/bin/env python3
"""bench/compare.py, the shell benchmarks' one comparison: its verdicts on synthetic ratios, then two real
commands compared end to end (runs alternate, the JSON holds every run, a goal and an RSS goal are judged, a
failing command stops it with exit 2). Usage: compare_test.py PATH/TO/compare.py"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import unittest

COMPARE = sys.argv.pop(1) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../bench/compare.py")
spec = importlib.util.spec_from_file_location("compare", COMPARE)
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


class Judge(unittest.TestCase):
    def test_a_clear_ratio_is_quoted_and_its_goal_judged_per_pair(self):
        v = compare.judge([0.50, 0.52, 0.49, 0.51, 0.50], 0.6, 5)
        self.assertFalse(v["noisy"])
        self.assertEqual(v["median"], 0.50)
        self.assertEqual(v["goal_state"], "met in every pair")
        self.assertEqual(v["flags"], [])

    def test_ratios_straddling_one_are_noise(self):
        v = compare.judge([0.97, 1.01, 1.03, 0.99, 1.02], None, 5)
        self.assertTrue(v["noisy"])
        self.assertIn("straddle", v["why"])
        self.assertTrue(any(f.startswith("NOISE") for f in v["flags"]))

    def test_a_spread_wider_than_the_effect_is_noise(self):
        v = compare.judge([1.05, 1.10, 1.40, 1.08, 1.12], None, 5)
        self.assertTrue(v["noisy"])
        self.assertIn("exceeds the effect", v["why"])

    def test_goal_met_by_the_median_only_or_not_at_all(self):
        self.assertEqual(compare.judge([1.3, 1.4, 1.6, 1.45, 1.55], 1.5, 5)["goal_state"],
                         "met by the median only (3 of 5 pairs)")
        self.assertEqual(compare.judge([1.6, 1.7, 1.8, 1.75, 1.65], 1.5, 5)["goal_state"],
                         "NOT met (0 of 5 pairs within)")

    def test_fewer_than_five_pairs_are_flagged(self):
        self.assertTrue(any(f.startswith("FEW") for f in compare.judge([0.5, 0.5], None, 2)["flags"]))

    def test_wall_below_cpu_over_cores_is_impossible(self):
        self.assertTrue(compare.impossible(1.0, 3.0, 2))
        self.assertFalse(compare.impossible(1.0, 2.0, 2))


class EndToEnd(unittest.TestCase):
    def run_compare(self, *extra):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            p = subprocess.run([sys.executable, COMPARE, "--a-name", "quick", "--a", "true", "--b-name", "slow",
                                "--b", "sleep 0.2", "--where", d, "--json", out] + list(extra),
                               capture_output=True, text=True, timeout=60)
            result = None
            if os.path.exists(out):
                with open(out) as f:
                    result = json.load(f)
            return p, result

    def test_two_commands_alternate_and_every_run_is_kept(self):
        p, r = self.run_compare("--pairs", "5", "--warmup", "1", "--goal", "0.9", "--a-rss-goal", "1000")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(r["runs"]["a"]), 5)
        self.assertEqual(len(r["runs"]["b"]), 5)
        self.assertEqual(r["goal_state"], "met in every pair")
        self.assertEqual(r["rss_goal_state"], "met")
        self.assertLess(r["ratio_max"], 0.9)
        self.assertIn("5 alternating pairs (A B A B ...)", p.stdout)
        self.assertIn("files: ", p.stdout)
        self.assertIn("load average before", p.stdout)
        # Runs print in the order they ran: warm-ups, then A B A B ...
        order = [line.split()[1] for line in p.stderr.splitlines() if line.strip().startswith(("warm", "run"))]
        self.assertEqual(order, ["quick", "slow"] * 6)

    def test_an_rss_goal_not_met_is_said(self):
        p, r = self.run_compare("--pairs", "5", "--a-rss-goal", "0.001")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(r["rss_goal_state"], "NOT met")
        self.assertIn("peak rss < 0.001 MiB: NOT met", p.stdout)

    def test_a_failing_command_stops_the_comparison(self):
        p = subprocess.run([sys.executable, COMPARE, "--a", "true", "--b", "exit 3", "--pairs", "1"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("exited with status 3", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
