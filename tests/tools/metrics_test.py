#!/usr/bin/env python3
"""A strict reading of shmq's Prometheus metrics, from both sources: the text
of `shmq-stat --prometheus` and of shmqd's `/metrics` (--metrics HOST:PORT).

Usage: metrics_test.py --shmq PATH --stat PATH --shmqd PATH [unittest arguments]

The exposition format (text 0.0.4) line by line, and the naming rules of
docs/metrics.md: shmq_ names, base units at the end (_bytes, _seconds), _total
on counters and only there, histograms with cumulative buckets, no errno as a
value (a `_failing` gauge with an errno label), the same labels on every
series of a family, a `namespace` label on every series, shmq_build_info.
"""

import argparse
import math
import os
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

SHMQ = SHMQ_STAT = SHMQD = ""

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# name{labels} value (no timestamps: shmq writes none).
SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
LABEL = re.compile(r'(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\\n]|\\[\\"n])*)"(?P<comma>,?)')
# Not base units, or a unit in the wrong place.
BAD_UNITS = re.compile(r"_(ms|us|ns|milliseconds|microseconds|nanoseconds|kib|mib|gib|kb|mb|gb|minutes|hours)(_|$)")


class Family:
    def __init__(self, name):
        self.name, self.type, self.help, self.samples = name, None, None, []


def parse_labels(text, line):
    labels, rest = {}, text
    while rest:
        match = LABEL.match(rest)
        if not match:
            raise AssertionError(f"bad labels {text!r} in {line!r}")
        name = match.group("name")
        if name in labels or name.startswith("__"):
            raise AssertionError(f"label {name} repeated or reserved in {line!r}")
        labels[name] = match.group("value").replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        rest = rest[match.end():]
        if rest and not match.group("comma"):
            raise AssertionError(f"labels not separated by commas in {line!r}")
    return labels


def family_of(sample_name, families):
    """The family a sample belongs to: itself, or a histogram's _bucket/_sum/_count."""
    if sample_name in families:
        return families[sample_name]
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name[: -len(suffix)]
        if sample_name.endswith(suffix) and base in families and families[base].type == "histogram":
            return families[base]
    raise AssertionError(f"sample {sample_name} has no TYPE line before it")


def parse(text):
    """Families by name, each with its (sample name, labels, value) list. Raises on any violation."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    families, order, current = {}, [], None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            assert len(parts) == 4 and NAME.fullmatch(parts[2]), f"bad comment line {line!r}"
            family = families.get(parts[2])
            if family is None:
                assert parts[2] not in order, f"{parts[2]} comes back after other families"
                family = families[parts[2]] = Family(parts[2])
                order.append(parts[2])
            assert not family.samples, f"{line!r} after {parts[2]}'s samples"
            if parts[1] == "TYPE":
                assert family.type is None, f"two TYPE lines for {parts[2]}"
                assert parts[3] in ("gauge", "counter", "histogram"), f"type {parts[3]} in {line!r}"
                family.type = parts[3]
            else:
                assert family.help is None, f"two HELP lines for {parts[2]}"
                assert parts[3].strip(), f"empty HELP for {parts[2]}"
                family.help = parts[3]
            current = family
            continue
        assert line and not line.startswith("#"), f"unexpected line {line!r}"
        match = SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        family = family_of(match.group("name"), families)
        assert family is current, f"{line!r}: family {family.name}'s samples are not together"
        value = float(match.group("value"))  # also 'NaN', '+Inf'
        labels = parse_labels(match.group("labels") or "", line)
        family.samples.append((match.group("name"), labels, value))
    for family in families.values():
        assert family.type and family.help, f"{family.name} lacks its TYPE or HELP"
        assert family.samples, f"{family.name} has no samples"
    return families


def check_conventions(test, families, ns):
    test.assertIn("shmq_build_info", families)
    for name, family in families.items():
        with test.subTest(family=name):
            test.assertTrue(name.startswith("shmq_"), name)
            test.assertIsNone(BAD_UNITS.search(name), f"{name}: not a base unit")
            test.assertNotRegex(name, r"_(error|errno)$", f"{name}: no errno as a value")
            if family.type == "counter":
                test.assertTrue(name.endswith("_total"), f"counter {name} lacks _total")
            else:
                test.assertFalse(name.endswith("_total"), f"{family.type} {name} ends in _total")
            if "bytes" in name:
                test.assertRegex(name, r"_bytes(_total)?$", f"{name}: _bytes is the unit, at the end")
            if "seconds" in name or family.type == "histogram":
                test.assertRegex(name, r"_seconds$", f"{name}: a duration in _seconds")
            keys = None
            for sample, labels, value in family.samples:
                test.assertEqual(labels.get("namespace"), ns, f"{sample}{labels}: namespace label")
                if "errno" in labels:
                    test.assertTrue(name.endswith("_failing"), f"{name}: errno labels only a _failing gauge")
                    test.assertRegex(labels["errno"], r"^(E[A-Z0-9]+)?$")
                if family.type == "counter" or family.type == "histogram":
                    test.assertGreaterEqual(value, 0, f"{sample}{labels}")
                test.assertFalse(math.isnan(value), f"{sample}{labels}")
                these = sorted(k for k in labels if k != "le")
                keys = these if keys is None else keys
                test.assertEqual(these, keys, f"{name}: every series has the same labels")
            series = [(s, tuple(sorted(l.items()))) for s, l, _ in family.samples]
            test.assertEqual(len(series), len(set(series)), f"{name}: a series twice")
            if family.type == "histogram":
                check_histogram(test, family)
    build = families["shmq_build_info"].samples
    test.assertEqual(len(build), 1)
    test.assertEqual(build[0][2], 1)
    test.assertRegex(build[0][1]["version"], r"^\d+\.\d+\.\d+")


def check_histogram(test, family):
    groups = {}
    for sample, labels, value in family.samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        groups.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sample.endswith("_bucket"):
            groups[key]["buckets"].append((float(labels["le"]), value))
        else:
            groups[key][sample.rsplit("_", 1)[1]] = value
    for key, parts in groups.items():
        bounds = [b for b, _ in parts["buckets"]]
        test.assertEqual(bounds, sorted(bounds), f"{family.name}: buckets in order")
        test.assertEqual(bounds[-1], math.inf, f"{family.name}: a +Inf bucket")
        counts = [c for _, c in parts["buckets"]]
        test.assertEqual(counts, sorted(counts), f"{family.name}: cumulative buckets")
        test.assertEqual(counts[-1], parts["count"], f"{family.name}: +Inf is the count")
        test.assertIsNotNone(parts["sum"])


class ParserTest(unittest.TestCase):
    """The parser itself refuses what it should."""

    def test_refuses_broken_expositions(self):
        good = "# HELP shmq_x_total X.\n# TYPE shmq_x_total counter\nshmq_x_total{namespace=\"n\"} 1\n"
        parse(good)
        for bad in (good.replace("counter", "untyped"),
                    good.replace('namespace="n"', 'namespace="n'),
                    good.replace('namespace="n"', "namespace=n"),
                    good + "shmq_y 1\n",
                    good + good,
                    good[:-1],
                    good.replace(" 1\n", " one\n")):
            with self.assertRaises((AssertionError, ValueError), msg=bad):
                parse(bad)


class MetricsTest(unittest.TestCase):
    counter = 0

    def setUp(self):
        MetricsTest.counter += 1
        self.ns = f"met{os.getpid()}-{MetricsTest.counter}"
        self.data = f"/tmp/shmq-metrics-test-{self.ns}"
        self.env = dict(os.environ, SHMQ_NAMESPACE=self.ns, SHMQ_DATA_DIR=self.data)
        self.addCleanup(self.cleanup)

    def cleanup(self):
        subprocess.run(["rm", "-rf", self.data])
        for name in os.listdir("/dev/shm"):
            if name.startswith(f"shmq.{self.ns}.") or name == f"shmqd.{self.ns}":
                os.unlink(f"/dev/shm/{name}")

    def run_ok(self, *argv, input=None):
        result = subprocess.run(argv, input=input, env=self.env, capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 0, f"{argv}: {result.stderr!r}")
        return result.stdout.decode()

    def populate(self):
        """A plain queue with a producer and two groups, a durable one, an unreadable segment."""
        self.run_ok(SHMQ, "create", "plain", "--capacity", "64K")
        self.run_ok(SHMQ, "send", "plain", "--producer", "p1", input=b"a\nb\nc\n")
        self.run_ok(SHMQ, "recv", "plain", "--group", "g1", "--count", "1")
        self.run_ok(SHMQ, "recv", "plain", "--group", "g2", "--count", "1")
        self.run_ok(SHMQ, "create", "durable", "--capacity", "64K", "--durable")
        # A delivery policy: a fraction of a second, and the dead-letter queue as a label.
        self.run_ok(SHMQ, "create", "dlq", "--capacity", "64K", "--max-message", "8K")
        self.run_ok(SHMQ, "create", "policed", "--capacity", "64K", "--max-message", "4K", "--dead-letter", "dlq",
                    "--max-deliveries", "3", "--ack-timeout", "1500ms", "--ttl", "250us")
        self.run_ok(SHMQ, "recv", "policed", "--group", "g", "--timeout", "10ms")
        with open(f"/dev/shm/shmq.{self.ns}.junk", "wb") as junk:
            junk.write(b"not a queue" * 100)

    def test_shmq_stat_prometheus(self):
        self.populate()
        families = parse(self.run_ok(SHMQ_STAT, "--prometheus"))
        check_conventions(self, families, self.ns)
        self.assertIn("shmq_journal_failing", families)
        self.assertIn("shmq_journal_state", families)
        states = {l["state"]: v for _, l, v in families["shmq_journal_state"].samples}
        self.assertEqual(sum(states.values()), 1, states)

        def value(family, **labels):
            (found,) = [v for _, l, v in families[family].samples if labels.items() <= l.items()]
            return found

        self.assertEqual(value("shmq_queue_ack_timeout_seconds", queue="policed"), 1.5)
        self.assertEqual(value("shmq_queue_ttl_seconds", queue="policed"), 0.00025)
        self.assertEqual(value("shmq_queue_max_deliveries", queue="policed"), 3)
        self.assertEqual(value("shmq_queue_ttl_seconds", queue="plain"), 0)
        self.assertEqual(value("shmq_queue_dead_letter_info", queue="policed", dead_letter="dlq"), 1)
        for counter in ("dead_lettered", "dropped", "expired", "rejected", "nacked", "lease_expired"):
            self.assertEqual(value(f"shmq_group_{counter}_total", queue="policed", group="g"), 0)

    def test_producer_series_only_while_a_process_holds_the_entry(self):
        """Bounded label sets: a detached producer's series go; an attached one's, dead or alive, stay."""
        self.run_ok(SHMQ, "create", "plain", "--capacity", "64K")
        self.run_ok(SHMQ, "send", "plain", "--producer", "gone", input=b"a\n")  # sent, detached
        live = subprocess.Popen([SHMQ, "send", "plain", "--producer", "live"], stdin=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=self.env)
        self.addCleanup(live.wait)
        self.addCleanup(live.kill)
        live.stdin.write(b"b\n")
        live.stdin.flush()

        def producers():
            families = parse(self.run_ok(SHMQ_STAT, "--prometheus"))
            check_conventions(self, families, self.ns)
            return {l["producer"]: {f: v for f, fam in families.items() if f.startswith("shmq_producer_")
                                    for _, fl, v in fam.samples if fl["producer"] == l["producer"]}
                    for _, l, _ in families.get("shmq_producer_attached", Family("")).samples}

        deadline = time.monotonic() + 10
        while producers().get("live", {}).get("shmq_producer_messages_total") != 1:
            self.assertLess(time.monotonic(), deadline, f"live never showed its message: {producers()}")
            time.sleep(0.05)
        seen = producers()
        self.assertNotIn("gone", seen, "a detached entry has no series")
        self.assertEqual(seen["live"]["shmq_producer_alive"], 1)
        live.kill()  # kill -9: no shmqd reaps it, so its entry stays attached, its process dead
        live.wait()
        seen = producers()
        self.assertEqual((seen["live"]["shmq_producer_attached"], seen["live"]["shmq_producer_alive"]), (1, 0))
        self.assertEqual(seen["live"]["shmq_producer_messages_total"], 1)

    def test_group_mode_and_active_members(self):
        """shmq_group_exclusive per group, shmq_consumer_active per member (label consumer: its index)."""
        self.run_ok(SHMQ, "create", "plain", "--capacity", "64K")
        members = []
        for group, mode in (("ex", ["--exclusive"]), ("ex", ["--exclusive"]), ("co", [])):
            member = subprocess.Popen([SHMQ, "recv", "plain", "--group", group, "--timeout", "20s", *mode],
                                      env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.addCleanup(member.wait)
            self.addCleanup(member.kill)
            members.append(member)
            deadline = time.monotonic() + 10  # one at a time: the first of "ex" is its active member
            while len(self.series("shmq_consumer_active")) < len(members):
                self.assertLess(time.monotonic(), deadline, f"member {len(members)} never joined")
                time.sleep(0.05)
        families = parse(self.run_ok(SHMQ_STAT, "--prometheus"))
        check_conventions(self, families, self.ns)
        self.assertEqual(families["shmq_group_exclusive"].type, "gauge")
        self.assertEqual({l["group"]: v for _, l, v in families["shmq_group_exclusive"].samples}, {"ex": 1, "co": 0})
        active = sorted((l["group"], v) for _, l, v in families["shmq_consumer_active"].samples)
        self.assertEqual(active, [("co", 1), ("ex", 0), ("ex", 1)])
        for _, labels, _ in families["shmq_consumer_active"].samples:
            self.assertEqual(set(labels), {"namespace", "queue", "group", "consumer"})
            self.assertRegex(labels["consumer"], r"^\d+$")

    def series(self, family):
        families = parse(self.run_ok(SHMQ_STAT, "--prometheus"))
        return families[family].samples if family in families else []

    def test_shmqd_metrics(self):
        self.populate()
        with socket.socket() as s:  # a free port (another process could take it: then the test says so)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        daemon = subprocess.Popen([SHMQD, "--log-level", "warn", "--metrics", f"127.0.0.1:{port}"], env=self.env)
        self.addCleanup(daemon.wait)
        self.addCleanup(daemon.terminate)
        deadline = time.monotonic() + 10
        while True:  # until shmqd serves /metrics and has taken the durable queue
            text = self.scrape(port)
            if text is not None and self.daemon_up(text):
                break
            self.assertLess(time.monotonic(), deadline, f"shmqd did not come up on port {port}: {text}")
            time.sleep(0.05)
        self.run_ok(SHMQ, "send", "durable", "--durable", input=b"x\ny\n")
        families = parse(self.scrape(port))
        check_conventions(self, families, self.ns)
        for name in ("shmq_daemon_repair_duration_seconds", "shmq_daemon_journal_sync_duration_seconds",
                     "shmq_daemon_rebuild_duration_seconds"):
            self.assertEqual(families[name].type, "histogram")
        written = families["shmq_daemon_journal_written_bytes_total"].samples[0][2]
        self.assertGreater(written, 0, "the durable send was journaled")

    @staticmethod
    def scrape(port):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            return None

    @staticmethod
    def daemon_up(text):
        families = parse(text)
        ups = {l["queue"]: v for _, l, v in families["shmq_daemon_up"].samples}
        return ups.get("durable") == 1


def main():
    global SHMQ, SHMQ_STAT, SHMQD
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shmq", required=True)
    parser.add_argument("--stat", required=True)
    parser.add_argument("--shmqd", required=True)
    args, rest = parser.parse_known_args()
    SHMQ, SHMQ_STAT, SHMQD = os.path.abspath(args.shmq), os.path.abspath(args.stat), os.path.abspath(args.shmqd)
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
