#!/usr/bin/env python3
"""Tests of the shmq and shmq-stat command-line tools, through the real binaries.

Usage: cli_test.py --shmq PATH --stat PATH --shmqd PATH [unittest arguments, e.g. SendTest]

Every test works in a namespace of its own and removes its segments at the
end, so the suites can run in parallel (ctest -j).
"""

import argparse
import base64
import glob
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SHMQ = ""
SHMQ_STAT = ""
SHMQD = ""
USAGE, FAILURE = 2, 1


class ToolTest(unittest.TestCase):
    """Runs the tools in a fresh namespace and cleans it up afterwards."""

    counter = 0

    def setUp(self):
        ToolTest.counter += 1
        self.ns = f"cli{os.getpid()}-{ToolTest.counter}"
        self.env = dict(os.environ, SHMQ_NAMESPACE=self.ns)
        self.addCleanup(self.remove_segments)

    def start_shmqd(self, *args):
        """shmqd for the test's namespace, once it serves queue "d"; stopped at the end."""
        daemon = subprocess.Popen([SHMQD, "--log-level", "warn", *args], env=self.env)
        self.addCleanup(daemon.wait)
        self.addCleanup(daemon.terminate)
        deadline = time.monotonic() + 10
        while self.queue_stat("d")["daemon"]["pid"] != daemon.pid:
            self.assertLess(time.monotonic(), deadline, "shmqd did not take the queue")
            time.sleep(0.01)
        return daemon

    def remove_segments(self):
        """Its queues, segments being built, and its shmqd's record."""
        paths = glob.glob(f"/dev/shm/shmq.{self.ns}.*") + glob.glob(f"/dev/shm/shmq-creating.{self.ns}.*")
        paths += glob.glob(f"/dev/shm/shmqd.{self.ns}")
        for path in paths:
            os.unlink(path)

    def run_tool(self, tool, *args, input=None, timeout=30):
        return subprocess.run([tool, *args], input=input, env=self.env, capture_output=True,
                              timeout=timeout)

    def shmq(self, *args, input=None, expect=0, timeout=30):
        """Runs shmq, asserts its exit code and returns the finished process."""
        if isinstance(input, str):
            input = input.encode()
        result = self.run_tool(SHMQ, *args, input=input, timeout=timeout)
        self.assertEqual(result.returncode, expect,
                         f"shmq {' '.join(args)}: stdout={result.stdout!r} stderr={result.stderr!r}")
        return result

    def stat(self, *args, expect=0):
        """Runs shmq-stat, asserts its exit code (None: any) and returns the finished process."""
        result = self.run_tool(SHMQ_STAT, *args)
        if expect is not None:
            self.assertEqual(result.returncode, expect,
                             f"shmq-stat {' '.join(args)}: stdout={result.stdout!r} stderr={result.stderr!r}")
        return result

    def stat_json(self, *args):
        return json.loads(self.stat("--json", "--sample", "0", *args).stdout)

    def queue_stat(self, queue):
        (info,) = self.stat_json(queue)["queues"]
        return info

    def recv_all(self, queue, *args):
        """Every message the group gets within a short idle timeout, as text lines."""
        out = self.shmq("recv", queue, "--timeout", "300ms", *args).stdout.decode()
        return out.splitlines()

    def recv_json(self, queue, *args):
        out = self.shmq("recv", queue, "--timeout", "300ms", "--format", "json", *args).stdout
        return [json.loads(line) for line in out.decode().splitlines()]

    def assert_error(self, result, *fragments):
        stderr = result.stderr.decode()
        for fragment in fragments:
            self.assertIn(fragment, stderr)

    def wait_for(self, predicate, what, seconds=10):
        deadline = time.monotonic() + seconds
        while not predicate():
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.05)

    def producers(self, queue):
        return {p["name"]: p for p in self.queue_stat(queue)["producers"]}

    def groups(self, queue):
        return {g["name"]: g for g in self.queue_stat(queue)["groups"]}


class UsageTest(ToolTest):
    def test_help_of_every_command(self):
        for command in ([], ["create"], ["delete"], ["list"], ["send"], ["recv"], ["dump"], ["group"],
                        ["group", "list"], ["group", "delete"], ["group", "seek"]):
            result = self.shmq(*command, "--help")
            self.assertIn(b"Usage: shmq", result.stdout)
        self.assertIn(b"Usage: shmq-stat", self.stat("--help").stdout)
        # What a queue takes of /dev/shm, and the option that sets most of it.
        create_help = self.shmq("create", "--help").stdout.decode()
        self.assertIn("--max-groups", create_help)
        self.assertIn("capacity/4 bytes of /dev/shm", create_help)
        self.assertIn("--follow", self.shmq("dump", "--help").stdout.decode())
        self.assertIn("exit status 130", self.shmq("send", "--help").stdout.decode())

    def test_version_of_every_tool_is_the_projects(self):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "CMakeLists.txt")) as file:
            cmake = file.read()
        version = re.search(r"project\(shmq VERSION (\S+)", cmake).group(1)
        self.assertEqual(self.shmq("--version").stdout.decode().strip(), f"shmq {version}")
        self.assertEqual(self.stat("--version").stdout.decode().strip(), f"shmq-stat {version}")
        daemon = self.run_tool(SHMQD, "--version", timeout=5)
        self.assertEqual((daemon.returncode, daemon.stdout.decode().strip()), (0, f"shmqd {version}"))

    def test_negative_and_out_of_range_numbers_are_usage_errors(self):
        for args, message in [(["recv", "q", "--count", "-1"], "--count: '-1' is negative"),
                              (["dump", "q", "--limit", "-3"], "--limit: '-3' is negative"),
                              (["dump", "q", "--from", "-1"], "--from: '-1' is negative"),
                              (["recv", "q", "--count", "x"], "--count: 'x' is not a whole number")]:
            with self.subTest(args=args):
                self.assert_error(self.shmq(*args, expect=USAGE), message)

    def test_shmqd_refuses_bad_numbers_before_it_starts(self):
        data_dir = tempfile.mkdtemp(prefix="shmq-cli-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        for args, message in [(["--retention-mib", "-5"], "--retention-mib: '-5' is not a whole number"),
                              (["--retention-seconds", "-1"], "--retention-seconds: '-1' is not a whole number"),
                              (["--metrics", "127.0.0.1:99999"], "port '99999' is not a number from 1 to 65535"),
                              (["--metrics", "9464"], "--metrics: expected HOST:PORT"),
                              (["--metrics", "localhost:"], "port '' is not a number")]:
            with self.subTest(args=args):
                try:
                    result = self.run_tool(SHMQD, "--data-dir", data_dir, *args, timeout=5)
                except subprocess.TimeoutExpired:
                    self.fail(f"shmqd {args} started instead of refusing the value")
                self.assertEqual(result.returncode, USAGE, result.stderr)
                self.assert_error(result, message)
                self.assertNotIn("shmqd up", result.stderr.decode())

    def test_fractions_of_sizes_say_so(self):
        self.assert_error(self.shmq("create", "q", "--capacity", "1.5G", expect=USAGE),
                          "--capacity: invalid size '1.5G': fractions are not supported; write 1536M")

    def test_the_readme_walk_through_sets_its_variables_and_kills_only_its_own(self):
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")) as file:
            readme = file.read()
        steps = "\n".join(re.findall(r"```\n(\$ .*?)```", readme, re.S))
        self.assertNotIn("pkill", steps, "pkill -f hits other users' processes")
        self.assertNotIn("killall", steps)
        shell = [line[2:] for line in steps.splitlines() if line.startswith("$ ")]
        assigned = {"PATH", "PWD", "!"}
        for line in shell:
            assigned |= set(re.findall(r"\bfor ([A-Za-z_][A-Za-z0-9_]*) in", line))
            for name in re.findall(r"\$\{?([A-Za-z_!][A-Za-z0-9_]*)", line):
                self.assertIn(name, assigned, f"the README uses ${name} before it sets it: {line}")
            if re.match(r"(shmq|shmqd|shmq-stat) ", line):
                self.assertIn("SHMQ_NAMESPACE", assigned, f"the README runs {line} before it sets its namespace")
            assigned |= set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", line))

    def test_usage_errors_exit_2_with_a_message(self):
        cases = [
            ([], "subcommand is required"),
            (["frobnicate"], "subcommand"),
            (["create"], "QUEUE is required"),
            (["create", "q", "--capacity", "12X"], "--capacity: invalid size '12X'"),
            (["create", "q", "--mode", "999"], "--mode: invalid mode"),
            (["create", "q", "--capacity", "3000"], "power of two"),
            (["create", "bad/name"], "invalid queue name"),
            (["--namespace", "bad.ns", "list"], "invalid namespace"),
            (["recv", "q", "--timeout", "5"], "--timeout: invalid duration '5'"),
            (["recv", "q", "--from", "yesterday"], "--from: invalid start 'yesterday'"),
            (["recv", "q", "--format", "xml"], "--format"),
            (["send", "q", "--bogus"], "--bogus"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_error(self.shmq(*args, expect=USAGE), message)
        for args, message in [(["--watch", "fast"], "--watch: invalid duration"),
                              (["--json", "--prometheus"], "excludes"),
                              (["--sample", "1x"], "--sample")]:
            with self.subTest(args=args):
                self.assert_error(self.stat(*args, expect=USAGE), message)


class AdminTest(ToolTest):
    def test_create_list_delete(self):
        self.shmq("create", "orders", "--capacity", "64K", "--max-message", "1K", "--mode", "640")
        self.shmq("create", "audit", "--durable")
        self.assertEqual(self.shmq("list").stdout, b"audit\norders\n")
        self.assertEqual(json.loads(self.shmq("list", "--format", "json").stdout), ["audit", "orders"])
        segment = f"/dev/shm/shmq.{self.ns}.orders"
        self.assertEqual(os.stat(segment).st_mode & 0o777, 0o640)
        info = self.queue_stat("orders")
        self.assertEqual((info["capacity"], info["max_message"], info["durable"]), (65536, 1024, False))
        self.assertTrue(self.queue_stat("audit")["durable"])
        self.shmq("delete", "orders")
        self.assertFalse(os.path.exists(segment))
        self.assertEqual(self.shmq("list").stdout, b"audit\n")

    def test_create_prints_what_the_segment_takes_of_dev_shm(self):
        out = self.shmq("create", "big", "--capacity", "16M").stdout.decode()
        size = os.stat(f"/dev/shm/shmq.{self.ns}.big").st_size
        self.assertAlmostEqual(size / 2**20, 80.06, delta=0.05)
        self.assertEqual(out, f"created queue 'big': 16.0 MiB ring, {size / 2**20:.1f} MiB of /dev/shm (16 groups x "
                              "4.0 MiB of delivery state: fewer with --max-groups; 60.0 KiB of tables)\n")
        out = self.shmq("create", "lean", "--capacity", "16M", "--max-groups", "2").stdout.decode()
        self.assertIn("24.0 MiB of /dev/shm (2 groups x 4.0 MiB", out)

    def test_modes_with_execute_bits_are_refused_world_writable_ones_warned_about(self):
        self.assert_error(self.shmq("create", "q", "--mode", "777", expect=USAGE),
                          "--mode: invalid mode '777': a queue segment is never executed", "write 666")
        self.assert_error(self.shmq("create", "q", "--mode", "0710", expect=USAGE), "write 600")
        self.assertFalse(os.path.exists(f"/dev/shm/shmq.{self.ns}.q"))
        result = self.shmq("create", "q", "--mode", "666")
        self.assert_error(result, "warning: mode 666 lets every user of this host write to queue 'q'", "660")
        self.assertEqual(os.stat(f"/dev/shm/shmq.{self.ns}.q").st_mode & 0o777, 0o666)
        self.assertNotIn(b"warning", self.shmq("create", "private").stderr)

    def test_group_by_name_or_gid_and_an_unknown_one(self):
        own = grp.getgrgid(os.getegid()).gr_name
        self.shmq("create", "q", "--mode", "660", "--group", own)
        st = os.stat(f"/dev/shm/shmq.{self.ns}.q")
        self.assertEqual((st.st_gid, st.st_mode & 0o777), (os.getegid(), 0o660))
        info = self.queue_stat("q")
        self.assertEqual((info["mode"], info["group"], info["gid"]), ("0660", own, os.getegid()))
        self.assertEqual(info["uid"], os.geteuid())
        self.assertIn(f"mode 0660 {pwd.getpwuid(os.geteuid()).pw_name}:{own}", self.stat("q").stdout.decode())
        # Unknown: exit 1, saying so, and nothing created.
        result = self.shmq("create", "u", "--group", "no-such-group-x", expect=1)
        self.assert_error(result, "--group: unknown group 'no-such-group-x'")
        self.assertFalse(os.path.exists(f"/dev/shm/shmq.{self.ns}.u"))
        # A group without a mode that admits it: created, with a warning.
        result = self.shmq("create", "g", "--group", str(os.getegid()))
        self.assert_error(result, "warning: mode 600 gives group", "--mode 660")
        # shmqd --group reads it the same way.
        daemon = self.run_tool(SHMQD, "--group", "no-such-group-x", "--data-dir", "/nonexistent/never-made")
        self.assertEqual(daemon.returncode, 1, daemon.stderr)
        self.assert_error(daemon, "--group: unknown group 'no-such-group-x'")
        if os.geteuid() != 0:
            self.skipTest("needs root for a group it is not in and another user's view (shown as skipped)")
        # Root gives any gid, one without a name too; a member of it (uid
        # 61002) may watch a 0640 queue but not send to it.
        self.shmq("create", "watched", "--mode", "640", "--group", "61000")
        self.shmq("send", "watched", input="one\n")
        as_member = dict(user=61002, group=61002, extra_groups=[61000])
        stat = subprocess.run([SHMQ_STAT, "--json", "--sample", "0", "watched"], env=self.env, capture_output=True,
                              **as_member)
        self.assertEqual(stat.returncode, 0, stat.stderr)
        (info,) = json.loads(stat.stdout)["queues"]
        self.assertEqual((info["mode"], info["group"], info["gid"], info["messages_total"]), ("0640", "61000", 61000, 1))
        send = subprocess.run([SHMQ, "send", "watched"], input=b"two\n", env=self.env, capture_output=True, **as_member)
        self.assertEqual(send.returncode, 1, send.stderr)
        self.assertIn(b"permission denied", send.stderr)
        self.assertIn(f"/dev/shm/shmq.{self.ns}.watched is mode 0640".encode(), send.stderr)

    def test_list_of_an_empty_namespace_says_so(self):
        result = self.shmq("list", "-n", "typo")
        self.assertEqual(result.stdout, b"")
        self.assert_error(result, "namespace 'typo' has no queues")
        self.assertEqual(self.shmq("list", "--format", "json", "-n", "typo").stdout, b"[]\n")

    def test_errors_name_the_queue_and_namespace(self):
        self.shmq("create", "q")
        self.assert_error(self.shmq("create", "q", expect=FAILURE), "'q'", "exists")
        self.assert_error(self.shmq("delete", "missing", expect=FAILURE),
                          f"queue 'missing' in namespace '{self.ns}' not found")
        self.assert_error(self.shmq("send", "missing", input="x\n", expect=FAILURE), "not found")
        self.assert_error(self.shmq("recv", "missing", expect=FAILURE), "not found")

    def test_namespace_option_overrides_the_environment(self):
        other = self.ns + "-other"
        # The queue's segment and shmqd's record (/dev/shm/shmqd.<ns>, which outlives it by design).
        self.addCleanup(lambda: [os.unlink(p) for p in glob.glob(f"/dev/shm/shmq.{other}.*") +
                                 glob.glob(f"/dev/shm/shmqd.{other}")])
        self.shmq("create", "q", "--namespace", other)
        self.assertEqual(self.shmq("list").stdout, b"")
        self.assertEqual(self.shmq("--namespace", other, "list").stdout, b"q\n")
        self.shmq("delete", "q", "-n", other)


class SendTest(ToolTest):
    def setUp(self):
        super().setUp()
        self.shmq("create", "q", "--capacity", "64K", "--max-message", "100")

    def test_one_message_per_line_and_a_summary(self):
        result = self.shmq("send", "q", input="alpha\nbeta\n\ngamma")
        self.assertEqual(result.stderr, b"sent 4, duplicates 0\n")
        self.assertEqual(self.recv_all("q"), ["alpha", "beta", "", "gamma"])

    def test_a_send_into_a_deleted_queue_fails(self):
        sender = subprocess.Popen([SHMQ, "send", "q", "-p", "late"], env=self.env, stdin=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.addCleanup(sender.kill)
        sender.stdin.write(b"lost\n")
        sender.stdin.flush()
        deadline = time.monotonic() + 10
        while not any(p["name"] == "late" and p["last_sequence"] == 1 for p in self.queue_stat("q")["producers"]):
            self.assertLess(time.monotonic(), deadline, "the line was not sent")
            time.sleep(0.01)
        self.shmq("delete", "q")
        sender.stdin.close()
        self.assertEqual(sender.wait(10), FAILURE)
        stderr = sender.stderr.read().decode()
        self.assertIn("sent 1, duplicates 0", stderr)
        self.assertIn("queue 'q' was deleted while this send ran: every line sent to it is lost", stderr)

    def test_a_receive_from_a_deleted_queue_ends(self):
        receiver = subprocess.Popen([SHMQ, "recv", "q", "-g", "g"], env=self.env, stderr=subprocess.PIPE)
        self.addCleanup(receiver.kill)
        deadline = time.monotonic() + 10
        while not self.queue_stat("q")["groups"]:
            self.assertLess(time.monotonic(), deadline, "the receiver did not join")
            time.sleep(0.01)
        self.shmq("delete", "q")
        self.assertEqual(receiver.wait(10), FAILURE, "it noticed within a wait slice, not never")
        self.assertIn("queue 'q' was deleted: nothing more will come", receiver.stderr.read().decode())

    def test_from_a_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
            file.write("one\ntwo\n")
            file.flush()
            self.shmq("send", "q", "--file", file.name)
        self.assertEqual(self.recv_all("q"), ["one", "two"])
        self.shmq("send", "q", "--file", "/nonexistent/file", expect=USAGE)

    def test_too_long_line_fails_after_sending_the_lines_before(self):
        result = self.shmq("send", "q", input="ok1\nok2\n" + "x" * 101 + "\nnever\n", expect=FAILURE)
        self.assert_error(result, "line 3:", "101 bytes", "maximum message size (100 bytes)",
                          "sent 2, duplicates 0")
        self.assertEqual(self.recv_all("q"), ["ok1", "ok2"])

    def test_seq_prefix_rerun_sends_only_what_is_missing(self):
        self.shmq("send", "q", "--seq-prefix", input="1\ta\n2\tb\n")
        result = self.shmq("send", "q", "--seq-prefix", input="1\ta\n2\tb\n3\tc\n")
        self.assertEqual(result.stderr, b"sent 1, duplicates 2\n")
        messages = self.recv_json("q")
        self.assertEqual([(m["seq"], m["payload"]) for m in messages], [(1, "a"), (2, "b"), (3, "c")])

    def test_seq_prefix_errors_name_the_line(self):
        self.assert_error(self.shmq("send", "q", "--seq-prefix", input="1\ta\nno tab\n", expect=FAILURE),
                          "line 2: expected SEQ<TAB>PAYLOAD", "sent 1")
        self.assert_error(self.shmq("send", "q", "--seq-prefix", input="x1\ta\n", expect=FAILURE),
                          "line 1: invalid sequence 'x1'")

    def test_a_rerun_under_the_producer_name_resumes_its_sequence(self):
        self.shmq("send", "q", input="a\nb\n")
        self.shmq("send", "q", input="c\n")
        self.shmq("send", "q", "--producer", "other", input="d\n")
        seqs = [(m["producer"], m["seq"]) for m in self.recv_json("q")]
        self.assertEqual(seqs, [("shmq-send", 1), ("shmq-send", 2), ("shmq-send", 3), ("other", 1)])

    def test_durable_needs_a_durable_queue(self):
        self.assert_error(self.shmq("send", "q", "--durable", input="a\n", expect=FAILURE), "not durable")

    def test_timeout_when_the_ring_stays_full(self):
        self.shmq("create", "small", "--capacity", "4K", "--max-message", "512")
        self.recv_all("small", "--group", "holder")  # a group that acks nothing later
        result = self.shmq("send", "small", "--timeout", "200ms", input=("y" * 500 + "\n") * 10,
                           expect=FAILURE)
        self.assert_error(result, "sent 7, duplicates 0", "line 8: no room in the ring before the timeout",
                          "group 'holder' holds it: acked up to position 64, 7 message(s) (3.9 KiB) behind, "
                          "no live member", "shmq group seek small holder --to newest",
                          "shmq group delete small holder")
        # As the error says: once the group skips what it has not read, the ring has room again.
        self.shmq("group", "seek", "small", "holder", "--to", "newest")
        self.shmq("send", "small", "--timeout", "200ms", input=("y" * 500 + "\n") * 3)

    def blocked_sender(self, *args):
        """A send that waits for room: a 4K ring held by a group, 10 lines of 500 bytes (7 fit)."""
        self.shmq("create", "small", "--capacity", "4K", "--max-message", "512")
        self.recv_all("small", "--group", "holder")
        sender = subprocess.Popen([SHMQ, "send", "small", *args], env=self.env, stdin=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.addCleanup(lambda: sender.poll() is None and (sender.kill(), sender.wait()))
        sender.stdin.write(("y" * 500 + "\n").encode() * 10)
        sender.stdin.close()
        self.wait_for(lambda: self.producers("small").get("shmq-send", {}).get("last_sequence") == 7,
                      "the sender never filled the ring")
        time.sleep(0.2)  # now blocked on the eighth line
        return sender

    def test_an_interrupted_send_prints_the_summary_and_detaches(self):
        for stop in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=stop):
                self.remove_segments()
                sender = self.blocked_sender()
                sender.send_signal(stop)
                self.assertEqual(sender.wait(timeout=5), -stop)  # a shell shows 130 or 143
                stderr = sender.stderr.read().decode()
                self.assertIn("sent 7, duplicates 0\n", stderr)
                self.assertIn(f"interrupted by {stop.name} at line 8, waiting for room in the ring: group 'holder'",
                              stderr)
                producer = self.producers("small")["shmq-send"]
                self.assertFalse(producer["attached"], "the producer detached, it is not left dead")

    def test_an_interrupted_send_waiting_for_input_prints_the_summary(self):
        sender = subprocess.Popen([SHMQ, "send", "q"], env=self.env, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: sender.poll() is None and (sender.kill(), sender.wait()))
        sender.stdin.write(b"a\nb\n")
        sender.stdin.flush()
        self.wait_for(lambda: self.producers("q").get("shmq-send", {}).get("last_sequence") == 2, "nothing sent")
        sender.send_signal(signal.SIGINT)
        self.assertEqual(sender.wait(timeout=5), -signal.SIGINT)
        self.assertIn("sent 2, duplicates 0\n", sender.stderr.read().decode())
        sender.stdin.close()
        self.assertFalse(self.producers("q")["shmq-send"]["attached"])

    def test_failures_before_the_first_line_print_the_summary_too(self):
        self.assert_error(self.shmq("send", "missing", input="x\n", expect=FAILURE), "not found",
                          "sent 0, duplicates 0")
        holder = subprocess.Popen([SHMQ, "send", "q", "-p", "busy"], env=self.env, stdin=subprocess.PIPE)
        self.addCleanup(lambda: (holder.stdin.close(), holder.wait()))
        holder.stdin.write(b"a\n")
        holder.stdin.flush()
        self.wait_for(lambda: self.producers("q").get("busy", {}).get("attached"), "the holder never attached")
        self.assert_error(self.shmq("send", "q", "-p", "busy", input="x\n", expect=FAILURE), "sent 0, duplicates 0")


class RecvTest(ToolTest):
    def setUp(self):
        super().setUp()
        self.shmq("create", "q")

    def test_count_and_ack(self):
        self.shmq("send", "q", input="1\n2\n3\n")
        self.assertEqual(self.shmq("recv", "q", "--count", "2").stdout, b"1\n2\n")
        self.assertEqual(self.recv_all("q"), ["3"])  # the first two were acked

    def test_timeout_exits_0_after_an_idle_period(self):
        start = time.monotonic()
        result = self.shmq("recv", "q", "--timeout", "400ms")
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.assertEqual(result.stdout, b"")

    def test_json_lines(self):
        before = time.time_ns()
        self.shmq("send", "q", "--producer", "p1", input="héllo\n")
        self.shmq("send", "q", "--producer", "p1", "--seq-prefix", input=b"7\t\xff\xfe\n")
        first, second = self.recv_json("q")
        self.assertEqual({k: first[k] for k in ("producer", "seq", "redelivered", "payload")},
                         {"producer": "p1", "seq": 1, "redelivered": False, "payload": "héllo"})
        self.assertNotIn("encoding", first)
        self.assertGreaterEqual(first["timestamp_ns"], before)
        self.assertTrue(first["timestamp"].endswith("Z"))
        self.assertLess(first["position"], second["position"])
        self.assertEqual((second["seq"], second["encoding"]), (7, "base64"))
        self.assertEqual(base64.b64decode(second["payload"]), b"\xff\xfe")

    def test_from_applies_to_a_new_group_only(self):
        # A new group cannot start before what every other group released:
        # "keeper" holds the ring from the start.
        self.recv_all("q", "--group", "keeper")
        self.shmq("send", "q", input="old1\nold2\n")
        positions = [m["position"] for m in self.recv_json("q", "--group", "probe")]
        self.assertEqual(self.recv_all("q", "--group", "g-newest", "--from", "newest"), [])
        self.assertEqual(self.recv_all("q", "--group", "g-pos", "--from", str(positions[1])), ["old2"])
        self.assertEqual(self.recv_all("q", "--group", "g-oldest", "--from", "oldest"), ["old1", "old2"])
        time.sleep(0.01)
        cut = time.time_ns()
        self.shmq("send", "q", input="new\n")
        self.assertEqual(self.recv_all("q", "--group", "g-time", "--from", f"@{cut}ns"), ["new"])
        self.assertEqual(self.recv_all("q", "--group", "g-rfc", "--from", "2000-01-01T00:00:00Z"),
                         ["old1", "old2", "new"])
        result = self.shmq("recv", "q", "--group", "g-newest", "--from", "oldest", "--timeout", "100ms")
        self.assertEqual(result.stdout, b"new\n")
        self.assert_error(result, "warning: group 'g-newest' exists; --from")

    def test_a_crash_between_print_and_ack_redelivers(self):
        self.shmq("send", "q", input=("z" * 40000 + "\n") * 2 + "last\n")
        reader, writer = os.pipe()  # nobody reads: the second print blocks, before its ack
        holder = subprocess.Popen([SHMQ, "recv", "q", "--format", "json"], env=self.env, stdout=writer)
        os.close(writer)
        deadline = time.monotonic() + 10
        while [g["in_flight"] for g in self.queue_stat("q")["groups"]] != [1]:
            self.assertLess(time.monotonic(), deadline, "the message never went in flight")
            time.sleep(0.05)
        holder.kill()
        holder.wait()
        os.close(reader)
        first, *rest = self.recv_json("q")
        self.assertEqual((first["seq"], first["redelivered"]), (2, True))
        self.assertEqual([(m["seq"], m["redelivered"]) for m in rest], [(3, False)])

    def test_a_long_recv_names_the_sender_of_a_recycled_entry(self):
        # One producer entry: "b" gets "a"'s entry once "a"'s message is
        # acked. A recv running all along must show "b", not the name it saw
        # first for that entry.
        self.shmq("create", "one", "--max-producers", "1")
        recv = subprocess.Popen([SHMQ, "recv", "one", "--format", "json", "--count", "2"], env=self.env,
                                stdout=subprocess.PIPE)
        self.wait_for(lambda: [g["members"] for g in self.queue_stat("one")["groups"]] == [1], "recv to join")
        self.shmq("send", "one", "--producer", "a", input="from a\n")
        first = json.loads(recv.stdout.readline())
        # Released (lag 0), not only acked: only then may "b" take the entry.
        self.wait_for(lambda: self.queue_stat("one")["groups"][0]["lag_bytes"] == 0, "the release of a's message")
        self.shmq("send", "one", "--producer", "b", input="from b\n")
        second = json.loads(recv.stdout.readline())
        self.assertEqual(recv.wait(timeout=10), 0)
        self.assertEqual([(m["producer"], m["producer_id"], m["payload"]) for m in (first, second)],
                         [("a", 0, "from a"), ("b", 0, "from b")])

    def test_exclusive_a_standby_takes_over_when_the_active_member_is_killed(self):
        self.shmq("send", "q", input=("z" * 40000 + "\n") * 2 + "a\nb\nc\n")
        reader, writer = os.pipe()  # nobody reads: the active member blocks printing the second, unacked
        active = subprocess.Popen([SHMQ, "recv", "q", "--group", "ex", "--exclusive", "--format", "json"],
                                  env=self.env, stdout=writer)
        os.close(writer)
        self.addCleanup(lambda: (active.kill(), active.wait()))
        self.wait_for(lambda: self.groups("q").get("ex", {}).get("in_flight") == 1, "the active member's hold")
        standby = subprocess.Popen([SHMQ, "recv", "q", "--group", "ex", "--exclusive", "--format", "json",
                                    "--count", "4", "--timeout", "20s"],
                                   env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (standby.kill(), standby.wait()))
        self.wait_for(lambda: self.groups("q")["ex"]["members"] == 2, "the standby to join")
        group = self.groups("q")["ex"]
        self.assertTrue(group["exclusive"])
        self.assertEqual({c["pid"]: c["active"] for c in group["consumers"]}, {active.pid: True, standby.pid: False})
        self.assertEqual(self.groups("q")["ex"]["consumers"][1]["received"], 0)
        (listing,) = [json.loads(line) for line in self.shmq("group", "list", "q", "--format", "json").stdout.splitlines()]
        self.assertEqual([(g["name"], g["exclusive"]) for g in listing], [("ex", True)])
        # A group's mode is its creator's: joining it as a competing member is a usage error.
        self.assert_error(self.shmq("recv", "q", "--group", "ex", "--timeout", "100ms", expect=USAGE),
                          "group 'ex' of queue 'q' is exclusive", "--exclusive")
        active.kill()
        active.wait()
        os.close(reader)
        out, err = standby.communicate(timeout=30)
        self.assertEqual(standby.returncode, 0, err)
        self.assertIn(b"standing by", err)
        got = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual([(m["seq"], m["redelivered"]) for m in got], [(2, True), (3, False), (4, False), (5, False)])
        self.assertEqual(got[0]["payload"], "z" * 40000)

    def test_interrupt_leaves_the_group_cleanly(self):
        self.shmq("send", "q", input="a\n")
        recv = subprocess.Popen([SHMQ, "recv", "q"], env=self.env, stdout=subprocess.PIPE)
        self.assertEqual(recv.stdout.readline(), b"a\n")
        recv.send_signal(signal.SIGINT)
        self.assertEqual(recv.wait(timeout=5), -signal.SIGINT)
        (group,) = self.queue_stat("q")["groups"]
        self.assertEqual((group["members"], group["in_flight"], group["lag_messages"]), (0, 0, 0))


class GroupTest(ToolTest):
    BATCH = 200

    def setUp(self):
        super().setUp()
        self.shmq("create", "q", "--capacity", "1M")

    def start_recv(self, group):
        return subprocess.Popen([SHMQ, "recv", "q", "--group", group, "--timeout", "1500ms"],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def members_received(self, group):
        groups = {g["name"]: g for g in self.queue_stat("q")["groups"]}
        return [c["received"] for c in groups.get(group, {}).get("consumers", [])]

    def test_one_group_splits_the_stream_two_groups_each_get_everything(self):
        consumers = [self.start_recv(g) for g in ("shared", "shared", "solo1", "solo2")]
        deadline = time.monotonic() + 10
        while len(self.members_received("shared")) < 2 or len(self.queue_stat("q")["groups"]) < 3:
            self.assertLess(time.monotonic(), deadline, "the consumers never joined")
            time.sleep(0.05)
        # Batches until both members of "shared" have taken some of the stream.
        lines = []
        for batch in range(50):
            sent = [f"m{batch}-{i}" for i in range(self.BATCH)]
            self.shmq("send", "q", input="\n".join(sent) + "\n")
            lines += sent
            if all(self.members_received("shared")):
                break
            time.sleep(0.05)
        outputs = [c.communicate(timeout=30)[0].decode().splitlines() for c in consumers]
        for consumer in consumers:
            self.assertEqual(consumer.returncode, 0)
        self.assertTrue(outputs[0] and outputs[1], "both members of the group got messages")
        self.assertEqual(sorted(outputs[0] + outputs[1]), sorted(lines))
        self.assertEqual(outputs[2], lines)
        self.assertEqual(outputs[3], lines)


class GroupCommandTest(ToolTest):
    """shmq group list|delete|seek: a one-off recv leaves a group behind; these remove or move it."""

    def setUp(self):
        super().setUp()
        self.shmq("create", "q")

    def test_list_and_delete_a_group_left_behind(self):
        self.recv_all("q", "--group", "one-off")
        self.recv_all("q", "--group", "reader")
        self.shmq("send", "q", input="a\nb\n")
        self.recv_all("q", "--group", "reader")
        listing = [json.loads(line) for line in self.shmq("group", "list", "q", "--format", "json").stdout.splitlines()]
        (groups,) = listing
        by_name = {g["name"]: g for g in groups}
        self.assertEqual((by_name["one-off"]["lag_messages"], by_name["one-off"]["slowest"]), (2, True))
        self.assertEqual((by_name["reader"]["lag_messages"], by_name["reader"]["slowest"]), (0, False))
        text = self.shmq("group", "list", "q").stdout.decode()
        self.assertRegex(text, r"\none-off +0 +0 +\d+ +\d+ +2 .*\(slowest: holds the ring\)\n")
        self.shmq("group", "delete", "q", "one-off")
        self.assertEqual(set(self.groups("q")), {"reader"})
        self.assert_error(self.shmq("group", "delete", "q", "one-off", expect=FAILURE), "no group 'one-off' in queue 'q'")
        self.assert_error(self.shmq("group", "delete", "q", "bad/name", expect=USAGE), "invalid group name")
        self.assert_error(self.shmq("group", "list", "missing", expect=FAILURE), "not found")

    def test_seek_moves_a_group_without_members(self):
        self.recv_all("q", "--group", "keeper")  # holds every message in the ring
        self.recv_all("q", "--group", "g")
        self.shmq("send", "q", input="a\nb\nc\n")
        positions = [m["position"] for m in self.recv_json("q", "--group", "probe")]
        out = self.shmq("group", "seek", "q", "g", "--to", "newest").stdout.decode()
        self.assertIn("group 'g' of queue 'q' now reads from position", out)
        self.assertEqual(self.recv_all("q", "--group", "g"), [])
        self.shmq("group", "seek", "q", "g", "--to", str(positions[1]))
        self.assertEqual(self.recv_all("q", "--group", "g"), ["b", "c"])
        self.shmq("group", "seek", "q", "g", "--to", "oldest")
        self.assertEqual(self.recv_all("q", "--group", "g"), ["a", "b", "c"])
        self.assert_error(self.shmq("group", "seek", "q", "nope", "--to", "newest", expect=FAILURE), "no group 'nope'")
        self.assert_error(self.shmq("group", "seek", "q", "g", expect=USAGE), "--to is required")
        self.assert_error(self.shmq("group", "seek", "q", "g", "--to", "soon", expect=USAGE), "--to: invalid start")

    def test_a_group_with_a_live_member_is_neither_moved_nor_deleted(self):
        member = subprocess.Popen([SHMQ, "recv", "q", "--group", "live", "--timeout", "20s"], env=self.env,
                                  stdout=subprocess.DEVNULL)
        self.addCleanup(lambda: (member.kill(), member.wait()))
        self.wait_for(lambda: self.groups("q").get("live", {}).get("members") == 1, "the member never joined")
        self.assert_error(self.shmq("group", "seek", "q", "live", "--to", "newest", expect=FAILURE),
                          "group 'live' has 1 live member(s)", "stop them first")
        self.assert_error(self.shmq("group", "delete", "q", "live", expect=FAILURE), "live consumer", "stop its consumers")
        self.assertIn("live", self.groups("q"))


class CrashTest(ToolTest):
    COUNT = 20000

    def setUp(self):
        super().setUp()
        self.shmq("create", "q", "--capacity", "4M")
        self.recv_all("q", "--group", "audit")  # keeps every message in the ring

    def input_lines(self):
        return "".join(f"{seq}\tline {seq}\n" for seq in range(1, self.COUNT + 1)).encode()

    def assert_each_line_once(self, messages):
        self.assertEqual([m["seq"] for m in messages], list(range(1, self.COUNT + 1)))
        self.assertEqual([m["payload"] for m in messages], [f"line {s}" for s in range(1, self.COUNT + 1)])

    def wait_until_sent(self, queue, predicate):
        deadline = time.monotonic() + 20
        while True:
            producers = self.queue_stat(queue)["producers"]
            last = producers[0]["last_sequence"] if producers else 0
            if predicate(last):
                return last
            self.assertLess(time.monotonic(), deadline, "the sender made no progress")
            time.sleep(0.05)

    def test_rerun_after_kill_9_while_waiting_for_input(self):
        data = self.input_lines()
        half = data[: data.index(b"\n", len(data) // 2) + 1]
        sender = subprocess.Popen([SHMQ, "send", "q", "--seq-prefix"], env=self.env,
                                  stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        sender.stdin.write(half)
        sender.stdin.flush()
        sent = half.count(b"\n")
        self.wait_until_sent("q", lambda last: last == sent)
        sender.kill()
        sender.wait()
        sender.stdin.close()
        sender.stderr.close()
        result = self.shmq("send", "q", "--seq-prefix", input=data)
        self.assertEqual(result.stderr.decode(), f"sent {self.COUNT - sent}, duplicates {sent}\n")
        self.assert_each_line_once(self.recv_json("q", "--group", "audit"))

    def test_rerun_after_kill_9_while_sending(self):
        # A ring far smaller than the input, held by a group: the sender
        # stops mid-stream, blocked for room, and is killed there.
        self.shmq("create", "small", "--capacity", "64K")
        self.recv_all("small", "--group", "audit")
        data = self.input_lines()
        with tempfile.TemporaryFile() as file:
            file.write(data)
            file.seek(0)
            sender = subprocess.Popen([SHMQ, "send", "small", "--seq-prefix"], env=self.env,
                                      stdin=file, stderr=subprocess.DEVNULL)
            self.addCleanup(sender.kill)
            sent = self.wait_until_sent("small", lambda last: last > 0)
            sender.kill()
            sender.wait()
        self.assertLess(sent, self.COUNT)
        with tempfile.TemporaryFile() as drained:
            drain = subprocess.Popen([SHMQ, "recv", "small", "--group", "audit", "--format", "json",
                                      "--timeout", "1s"], env=self.env, stdout=drained)
            self.addCleanup(drain.kill)
            rerun = self.shmq("send", "small", "--seq-prefix", input=data)
            self.assertEqual(drain.wait(timeout=60), 0)
            drained.seek(0)
            messages = [json.loads(line) for line in drained]
        sent_again, duplicates = map(int, re.fullmatch(rb"sent (\d+), duplicates (\d+)\n",
                                                       rerun.stderr).groups())
        self.assertEqual(sent_again + duplicates, self.COUNT)
        self.assertGreaterEqual(duplicates, sent)
        self.assert_each_line_once(messages)


class StatTest(ToolTest):
    def setUp(self):
        super().setUp()
        self.shmq("create", "q", "--capacity", "1M", "--max-message", "64K")

    def hold_one_in_flight(self):
        """A recv whose stdout nobody reads: it blocks printing a large message, unacked."""
        self.shmq("send", "q", "--producer", "big", input=("z" * 60000 + "\n") * 3)
        reader, writer = os.pipe()
        holder = subprocess.Popen([SHMQ, "recv", "q", "--group", "stuck"], env=self.env, stdout=writer)
        os.close(writer)
        self.addCleanup(lambda: (holder.kill(), holder.wait(), os.close(reader)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            groups = {g["name"]: g for g in self.queue_stat("q")["groups"]}
            if groups.get("stuck", {}).get("in_flight") == 1:
                return
            time.sleep(0.05)
        self.fail("the holder never had a message in flight")

    def test_json_figures_after_a_scripted_workload(self):
        self.recv_all("q", "--group", "idle")  # joined before the messages
        self.shmq("send", "q", "--producer", "p1", input="".join(f"msg{i}\n" for i in range(10)))
        self.shmq("recv", "q", "--group", "half", "--count", "4")
        self.hold_one_in_flight()
        info = self.queue_stat("q")
        self.assertEqual((info["messages_total"], info["messages_in_use"]), (13, 13))
        producers = {p["name"]: p for p in info["producers"]}
        self.assertEqual((producers["p1"]["last_sequence"], producers["p1"]["messages"]), (10, 10))
        self.assertEqual(producers["big"]["last_sequence"], 3)
        groups = {g["name"]: g for g in info["groups"]}
        self.assertEqual(groups["idle"]["lag_messages"], 13)
        self.assertEqual(groups["half"]["lag_messages"], 9)
        self.assertEqual(groups["half"]["acked"], 4)
        self.assertEqual(groups["half"]["members"], 0)
        stuck = groups["stuck"]
        self.assertEqual((stuck["members"], stuck["in_flight"]), (1, 1))
        self.assertTrue(stuck["consumers"][0]["alive"])
        self.assertGreater(stuck["lag_bytes"], 0)
        self.assertEqual(info["bytes_in_use"], info["tail_position"] - info["head_position"])
        self.assertIsNone(info["messages_per_s"])

    def test_rates_over_the_sample(self):
        self.shmq("send", "q", input="a\n")
        (info,) = json.loads(self.stat("--json", "--sample", "100ms").stdout)["queues"]
        self.assertEqual(info["messages_per_s"], 0.0)
        self.assertEqual(info["producers"][0]["messages_per_s"], 0.0)

    def test_table(self):
        self.shmq("send", "q", "--producer", "p1", input="a\nb\n")
        self.shmq("recv", "q", "--group", "g1", "--count", "1")
        table = self.stat("--sample", "0").stdout.decode()
        self.assertIn(f"namespace '{self.ns}'", table)
        self.assertIn("QUEUE q  capacity 1.0 MiB", table)
        self.assertRegex(table, r"\n  p1 +0 +- +detached +2 +2 +-\n")
        self.assertRegex(table, r"\n  g1 +0 +\d+ +\d+ +1 ")

    def test_exclusive_groups_mode_and_active_member(self):
        members = []
        for group in ("ex", "ex", "co"):  # one at a time: the first of "ex" is its active member
            members.append(subprocess.Popen([SHMQ, "recv", "q", "--group", group, "--timeout", "20s",
                                             *(["--exclusive"] if group == "ex" else [])],
                                            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.addCleanup(lambda member=members[-1]: (member.kill(), member.wait()))
            self.wait_for(lambda: sum(g["members"] for g in self.groups("q").values()) == len(members),
                          f"member {len(members)} to join")
        groups = self.groups("q")
        self.assertEqual((groups["ex"]["exclusive"], groups["co"]["exclusive"]), (True, False))
        self.assertEqual({c["pid"]: c["active"] for c in groups["ex"]["consumers"]},
                         {members[0].pid: True, members[1].pid: False})
        self.assertEqual([c["active"] for c in groups["co"]["consumers"]], [True])
        table = self.stat("--sample", "0").stdout.decode()
        self.assertRegex(table, rf"\n  ex +2 .*  exclusive: active member \d+ \(pid {members[0].pid}\), 1 standby\n")
        self.assertRegex(table, r"\n  co +1 .* -\n")  # a competing group: no note
        text = self.stat("--prometheus").stdout.decode()
        self.assertIn(f'shmq_group_exclusive{{namespace="{self.ns}",queue="q",group="ex"}} 1', text)
        self.assertIn(f'shmq_group_exclusive{{namespace="{self.ns}",queue="q",group="co"}} 0', text)
        active = re.findall(rf'shmq_consumer_active{{namespace="{self.ns}",queue="q",group="(\w+)",consumer="\d+"}} (\d)',
                            text)
        self.assertEqual(sorted(active), [("co", "1"), ("ex", "0"), ("ex", "1")])

    def test_unreadable_segments_are_shown_with_the_reason(self):
        with open(f"/dev/shm/shmq.{self.ns}.junk", "wb") as junk:
            junk.write(b"not a queue" * 1000)
        queues = {q["name"]: q for q in self.stat_json()["queues"]}
        self.assertFalse(queues["junk"]["readable"])
        self.assertTrue(queues["junk"]["error"])
        self.assertTrue(queues["q"]["readable"])
        self.assertIn("QUEUE junk  UNREADABLE: ", self.stat("--sample", "0").stdout.decode())
        self.assertIn(f'shmq_queue_readable{{namespace="{self.ns}",queue="junk"}} 0',
                      self.stat("--prometheus").stdout.decode())
        self.assert_error(self.stat("junk", expect=FAILURE), "junk")
        self.assert_error(self.stat("missing", expect=FAILURE), "not found")

    def test_never_changes_a_segment(self):
        self.shmq("send", "q", input="a\nb\n")
        self.shmq("recv", "q", "--group", "g", "--count", "1")
        segment = f"/dev/shm/shmq.{self.ns}.q"
        before = hashlib.sha256(open(segment, "rb").read()).digest()
        self.stat("--sample", "0")
        self.stat("--json")
        self.stat("--prometheus")
        self.assertEqual(hashlib.sha256(open(segment, "rb").read()).digest(), before)

    def test_prometheus_exposition(self):
        self.shmq("send", "q", "--producer", "p1", input="a\nb\nc\n")
        self.shmq("recv", "q", "--group", "g1", "--count", "1")
        text = self.stat("--prometheus").stdout.decode()
        samples = {}
        declared = set()
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                name, kind = line.split()[2:]
                self.assertIn(kind, ("gauge", "counter"))
                self.assertNotIn(name, declared, "one TYPE line per family")
                declared.add(name)
                continue
            if line.startswith("# HELP "):
                continue
            match = re.fullmatch(r'(shmq_[a-z_]+)\{namespace="([^"]*)",?([^}]*)\} (\d+)', line)
            self.assertIsNotNone(match, line)
            self.assertIn(match.group(1), declared)
            self.assertEqual(match.group(2), self.ns, line)
            samples[(match.group(1), match.group(3))] = int(match.group(4))
        self.assertEqual(samples[("shmq_queue_messages_total", 'queue="q"')], 3)
        # p1 detached when its send ended: a detached producer has no series (docs/metrics.md).
        self.assertNotIn(("shmq_producer_last_sequence", 'queue="q",producer="p1"'), samples)
        self.assertEqual(samples[("shmq_group_lag_messages", 'queue="q",group="g1"')], 2)
        self.assertEqual(samples[("shmq_group_acked_total", 'queue="q",group="g1"')], 1)
        self.assertEqual(samples[("shmq_daemon_up", 'queue="q"')], 0)


@unittest.skipUnless(shutil.which("tmux"), "tmux is not installed")
class CheckTest(ToolTest):
    """shmq-stat --check: silent and 0 when healthy, one line per problem and 1 when not."""

    def setUp(self):
        super().setUp()
        self.shmq("create", "q", "--capacity", "1M", "--max-message", "64K")

    def check(self, *args, expect=0):
        return self.stat("--check", *args, expect=expect).stdout.decode().splitlines()

    def test_healthy_prints_nothing_and_exits_0(self):
        self.recv_all("q", "--group", "billing")
        self.shmq("send", "q", input="a\nb\n")
        self.recv_all("q", "--group", "billing")
        self.assertEqual(self.check(), [])
        self.assertEqual(self.check("q", "--max-lag", "0", "--max-lag", "1K", "--max-lag-seconds", "0"), [])
        # An empty namespace is healthy too.
        self.assertEqual(self.stat("--check", "-n", self.ns + "-empty").stdout, b"")

    def test_a_group_lagging_by_messages(self):
        self.recv_all("q", "--group", "billing")
        self.shmq("send", "q", input="".join(f"m{i}\n" for i in range(12)))
        self.shmq("recv", "q", "--group", "billing", "--count", "2")
        self.assertEqual(self.check("--max-lag", "10"), [])
        self.assertEqual(self.check("--max-lag", "9", expect=FAILURE),
                         ["q: group billing lags 10 messages (bound 9)"])

    def test_a_group_lagging_by_bytes(self):
        self.recv_all("q", "--group", "billing")
        self.shmq("send", "q", input=("x" * 3000 + "\n") * 2)
        lag = self.groups("q")["billing"]["lag_bytes"]
        self.assertGreater(lag, 6000)
        self.assertEqual(self.check("q", "--max-lag", "64KiB"), [])
        self.assertEqual(self.check("q", "--max-lag", "4K", expect=FAILURE),
                         [f"q: group billing lags {lag} bytes ({lag / 1024:.1f} KiB) (bound 4096 bytes (4.0 KiB))"])
        self.assert_error(self.stat("--check", "--max-lag", "12X", expect=USAGE), "--max-lag: invalid size '12X'")
        self.assert_error(self.stat("--max-lag", "5", expect=USAGE), "--max-lag requires --check")

    def test_a_group_lagging_by_seconds(self):
        self.recv_all("q", "--group", "billing")
        self.shmq("send", "q", input="old\n")
        self.assertEqual(self.check("--max-lag-seconds", "5"), [])
        time.sleep(1.3)
        (line,) = self.check("--max-lag-seconds", "1", expect=FAILURE)
        self.assertRegex(line, r"^q: group billing lags (1\.[3-9]|[2-9]\.\d) seconds: its oldest "
                               r"unacknowledged message is that old \(bound 1 seconds\)$")
        self.recv_all("q", "--group", "billing")
        self.assertEqual(self.check("--max-lag-seconds", "1"), [])

    def test_a_dead_consumer_not_reaped(self):
        self.shmq("send", "q", input=("z" * 60000 + "\n") * 3)
        reader, writer = os.pipe()
        holder = subprocess.Popen([SHMQ, "recv", "q", "--group", "stuck"], env=self.env, stdout=writer)
        os.close(writer)
        self.addCleanup(os.close, reader)
        self.wait_for(lambda: self.groups("q").get("stuck", {}).get("in_flight") == 1,
                      "the holder never had a message in flight")
        self.assertEqual(self.check(), [])
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        self.assertEqual(self.check(expect=FAILURE),
                         [f"q: group stuck consumer 0 (pid {holder.pid}) is dead and not reaped, holding 1 in flight"])

    def test_require_daemon_without_shmqd(self):
        self.assertEqual(self.check("--require-daemon", expect=FAILURE),
                         [f"namespace '{self.ns}': shmqd is not running (--require-daemon)"])
        self.shmq("delete", "q")  # no queue at all: shmqd's own record says it
        self.assertEqual(self.check("--require-daemon", expect=FAILURE),
                         [f"namespace '{self.ns}': shmqd is not running (--require-daemon)"])
        self.shmq("create", "d")
        self.start_shmqd()  # once it serves d
        self.assertEqual(self.check("--require-daemon"), [])

    def test_a_durable_queue_needs_shmqd_and_passes_with_it(self):
        data_dir = tempfile.mkdtemp(prefix="shmq-cli-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        self.env["SHMQ_DATA_DIR"] = data_dir
        self.shmq("create", "d", "--durable")
        self.assertEqual(self.check(expect=FAILURE),
                         ["d: shmqd is down (never seen on this queue; a durable queue's journal needs it)"])
        self.start_shmqd()
        self.wait_for(lambda: self.stat("--check", "--require-daemon", expect=None).returncode == 0,
                      "shmqd never took every queue")
        self.assertEqual(self.check("--require-daemon"), [])

    def test_missing_and_unreadable_queues(self):
        with open(f"/dev/shm/shmq.{self.ns}.junk", "wb") as junk:
            junk.write(b"not a queue" * 1000)
        lines = self.check("q", "nope", "junk", expect=FAILURE)
        self.assertEqual(lines[0], f"nope: no such queue in namespace '{self.ns}'")
        self.assertTrue(lines[1].startswith("junk: unreadable: "), lines)
        self.assertEqual(len(lines), 2)
        self.assertEqual(self.check("q"), [])
        self.assert_error(self.stat("q", "q", expect=USAGE), "one QUEUE at most")


class WatchTest(ToolTest):
    def setUp(self):
        super().setUp()
        self.socket = f"shmq-watch-{self.ns}"
        self.shmq("create", "q")
        self.rc_file = tempfile.NamedTemporaryFile(delete=False)
        self.addCleanup(os.unlink, self.rc_file.name)
        self.addCleanup(lambda: subprocess.run(["tmux", "-L", self.socket, "kill-server"],
                                               capture_output=True))

    def start_watch(self, rows=40):
        # The shell stays, so the screen can be read after shmq-stat quit.
        command = (f"SHMQ_NAMESPACE={self.ns} {SHMQ_STAT} --watch 200ms; "
                   f"echo exit=$? > {self.rc_file.name}; sleep 30")
        self.tmux("new-session", "-d", "-x", "150", "-y", str(rows), command)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, check=True,
                              env=self.env).stdout.decode()

    def screen_shows(self, pattern, seconds=5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            screen = self.tmux("capture-pane", "-p")
            if re.search(pattern, screen):
                return screen
            time.sleep(0.1)
        self.fail(f"the screen never showed {pattern!r}; it shows:\n{screen}")

    def wait_for_exit(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if open(self.rc_file.name).read():
                return open(self.rc_file.name).read().strip()
            time.sleep(0.1)
        self.fail("shmq-stat --watch did not quit")

    def test_draws_refreshes_and_quits_on_q(self):
        self.start_watch()
        self.screen_shows(r"total 0 messages")
        self.shmq("send", "q", input="a\nb\nc\n")
        screen = self.screen_shows(r"total 3 messages")
        self.assertIn("q or Ctrl-C quits", screen)
        self.tmux("send-keys", "q")
        self.assertEqual(self.wait_for_exit(), "exit=0")
        self.assertNotIn("QUEUE q", self.tmux("capture-pane", "-p"), "the alternate screen is gone")

    def test_quits_on_ctrl_c(self):
        self.start_watch()
        self.screen_shows(r"QUEUE q")
        self.tmux("send-keys", "C-c")
        self.assertEqual(self.wait_for_exit(), "exit=0")

    def test_a_short_terminal_shows_how_many_lines_are_left_out(self):
        for name in ("q2", "q3", "q4"):
            self.shmq("create", name)
        self.start_watch(rows=12)
        screen = self.screen_shows(r"\+\d+ more lines")
        lines = screen.rstrip("\n").splitlines()
        self.assertLessEqual(len(lines), 12)
        self.assertIn("q or Ctrl-C quits", lines[-1])
        hidden = int(re.search(r"\+(\d+) more lines", screen).group(1))
        full = self.stat("--sample", "0").stdout.decode().splitlines()
        shown = lines.index(next(l for l in lines if "more lines" in l))
        self.assertEqual(shown + hidden, len(full))


class DumpTest(ToolTest):
    def setUp(self):
        super().setUp()
        self.shmq("create", "q")
        self.shmq("send", "q", "--producer", "p", input="first\nsecond\n")

    def test_text_and_json(self):
        text = self.shmq("dump", "q").stdout.decode()
        self.assertIn(f"queue 'q' in namespace '{self.ns}'", text)
        self.assertRegex(text, r"\n +\d+  data +5 +0 +1  \S+Z  first\n")
        records = [json.loads(l) for l in self.shmq("dump", "q", "--format", "json").stdout.splitlines()]
        self.assertEqual([(r["kind"], r["seq"], r["payload"]) for r in records],
                         [("data", 1, "first"), ("data", 2, "second")])
        limited = self.shmq("dump", "q", "--format", "json", "--limit", "1").stdout.splitlines()
        self.assertEqual(len(limited), 1)
        after = self.shmq("dump", "q", "--format", "json", "--from", str(records[0]["position"] + 1))
        self.assertEqual([json.loads(l)["payload"] for l in after.stdout.splitlines()], ["second"])

    def test_many_records_page_through(self):
        self.shmq("send", "q", input="".join(f"{i}\n" for i in range(2500)))
        lines = self.shmq("dump", "q", "--format", "json").stdout.splitlines()
        self.assertEqual(len(lines), 2502)

    def test_follow_prints_records_as_they_are_committed_and_joins_no_group(self):
        follower = subprocess.Popen([SHMQ, "dump", "q", "--follow"], env=self.env, stdout=subprocess.PIPE)
        self.addCleanup(lambda: follower.poll() is None and (follower.kill(), follower.wait()))
        self.assertIn(b"queue 'q'", follower.stdout.readline())
        self.assertIn(b"POSITION", follower.stdout.readline())
        time.sleep(0.2)
        self.shmq("send", "q", "--producer", "p", input="third\n")
        self.assertRegex(follower.stdout.readline().decode(), r"data +5 +0 +3 .*  third\n")  # not first, second
        self.assertEqual(self.queue_stat("q")["groups"], [])
        follower.send_signal(signal.SIGINT)
        self.assertEqual(follower.wait(timeout=5), -signal.SIGINT)

    def test_follow_from_a_position_until_a_limit_or_a_timeout(self):
        first = json.loads(self.shmq("dump", "q", "--format", "json", "--limit", "1").stdout)
        out = self.shmq("dump", "q", "--follow", "--from", str(first["position"]), "--limit", "2", "--format", "json",
                        timeout=10).stdout
        self.assertEqual([json.loads(l)["payload"] for l in out.splitlines()], ["first", "second"])
        start = time.monotonic()
        out = self.shmq("dump", "q", "--follow", "--timeout", "300ms", "--format", "json").stdout
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertEqual(out, b"")
        self.assert_error(self.shmq("dump", "q", "--timeout", "1s", expect=USAGE), "--timeout requires --follow")
        self.assert_error(self.shmq("dump", "q", "--follow", "--journal", expect=USAGE), "excludes")

    def test_journal_of_a_queue_without_one(self):
        data_dir = tempfile.mkdtemp(prefix="shmq-cli-")
        self.addCleanup(shutil.rmtree, data_dir, True)
        self.assert_error(self.shmq("dump", "q", "--journal", "--data-dir", data_dir, expect=FAILURE),
                          "no journal of queue 'q'")


class DurableTest(ToolTest):
    """send --durable and dump --journal against a real shmqd."""

    def setUp(self):
        super().setUp()
        self.data_dir = tempfile.mkdtemp(prefix="shmq-cli-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.env["SHMQ_DATA_DIR"] = self.data_dir
        self.shmq("create", "d", "--durable")

    def test_durable_send_waits_for_the_journal(self):
        self.assert_error(self.shmq("send", "d", "--durable", "--timeout", "200ms", input="early\n",
                                    expect=FAILURE), "did not confirm")
        self.start_shmqd()
        self.shmq("send", "d", "--durable", "--timeout", "10s", input="late\n")
        dumped = self.shmq("dump", "d", "--journal", "--format", "json").stdout.splitlines()
        # The early line was committed in shared memory: shmqd journaled it when it came.
        self.assertEqual([json.loads(l)["payload"] for l in dumped], ["early", "late"])
        text = self.shmq("dump", "d", "--journal").stdout.decode()
        self.assertIn("journal of queue 'd'", text)

    def test_a_durable_rerun_of_duplicates_waits_for_the_journal(self):
        # The rerun sends nothing (every line is a duplicate), but exits 0 only
        # once the lines the first run sent are on disk.
        lines = "1\ta\n2\tb\n3\tc\n"
        send = ("send", "d", "-p", "p", "--durable", "--seq-prefix", "--timeout", "300ms")
        self.assert_error(self.shmq(*send, input=lines, expect=FAILURE), "sent 3, duplicates 0", "did not confirm")
        self.assert_error(self.shmq(*send, input=lines, expect=FAILURE), "sent 0, duplicates 3", "did not confirm")
        self.start_shmqd()
        self.assert_error(self.shmq(*send[:-1], "10s", input=lines), "sent 0, duplicates 3")
        dumped = self.shmq("dump", "d", "--journal", "--format", "json").stdout.splitlines()
        self.assertEqual([json.loads(l)["payload"] for l in dumped], ["a", "b", "c"])

    def test_recv_replays_the_journal_beyond_the_ring(self):
        # A ring of 4 KiB holds 64 lines; the journal holds all 300. With no
        # group, the ring keeps only what the journal has not written.
        self.shmq("create", "r", "--durable", "--capacity", "4K", "--max-message", "32")
        self.start_shmqd()
        lines = "".join(f"line {i}\n" for i in range(1, 301))
        self.shmq("send", "r", "--durable", "--timeout", "20s", input=lines)
        got = self.shmq("recv", "r", "--from", "oldest", "--count", "300", "--timeout", "10s",
                        "--data-dir", self.data_dir).stdout.decode()
        self.assertEqual(got, lines)
        # It stopped right after its last message, still reading the journal: shmq-stat says so.
        self.assertIn("(reading the journal)", self.stat("r", "--sample", "0").stdout.decode())
        journal = [json.loads(l) for l in self.shmq("dump", "r", "--journal", "--format", "json").stdout.splitlines()]
        self.assertEqual(len(journal), 300)
        got = self.shmq("recv", "r", "-g", "from-200", "--from", str(journal[199]["position"]), "--timeout", "1s",
                        "--format", "json").stdout.splitlines()
        self.assertEqual([json.loads(l)["payload"] for l in got], [f"line {i}" for i in range(200, 301)])
        # Caught up, that group reads the ring again.
        groups = {g["name"]: g for g in self.queue_stat("r")["groups"]}
        self.assertFalse(groups["from-200"]["reading_journal"], groups)

    def test_delete_destroys_the_journal_only_once_everything_is_acked(self):
        self.start_shmqd()
        self.shmq("send", "d", "--durable", "--timeout", "10s", input="kept\n")
        journal = os.path.join(self.data_dir, "journal", "d")
        self.assertTrue(os.path.isdir(journal))
        self.assert_error(self.shmq("delete", "d", expect=FAILURE), "destroys its journal",
                          "1 message(s) no group has acknowledged", "--force")
        self.assertTrue(os.path.isdir(journal))
        self.assertEqual(self.shmq("recv", "d", "-g", "all", "--count", "1", "--timeout", "5s").stdout, b"kept\n")
        self.assertIn(b"removed the journal", self.shmq("delete", "d").stderr)
        self.assertFalse(os.path.exists(journal))
        self.assertEqual(self.shmq("list").stdout, b"")

    def test_delete_force_destroys_unacked_messages(self):
        self.start_shmqd()
        self.shmq("send", "d", "--durable", "--timeout", "10s", input="dropped\n")
        self.assertIn(b"and every message in it", self.shmq("delete", "d", "--force").stderr)
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "journal", "d")))

    def test_shmqd_takes_its_namespace_from_n(self):
        other = self.ns + "-n"
        # The queue's segment and shmqd's record (/dev/shm/shmqd.<ns>, which outlives it by design).
        self.addCleanup(lambda: [os.unlink(p) for p in glob.glob(f"/dev/shm/shmq.{other}.*") +
                                 glob.glob(f"/dev/shm/shmqd.{other}")])
        self.shmq("create", "q", "-n", other)
        env = dict(self.env, SHMQ_NAMESPACE="default-unused")
        daemon = subprocess.Popen([SHMQD, "-n", other, "--log-level", "warn"], env=env)
        self.addCleanup(daemon.wait)
        self.addCleanup(daemon.terminate)
        self.wait_for(lambda: daemon.poll() is not None or
                      self.stat_json("-n", other, "q")["queues"][0]["daemon"]["pid"] == daemon.pid,
                      "shmqd -n did not take the namespace's queue")
        self.assertIsNone(daemon.poll(), "shmqd -n exited")

    def test_create_over_a_journal_needs_a_rebuild(self):
        daemon = self.start_shmqd()
        self.shmq("send", "d", "--durable", "--timeout", "10s", input="journaled\n")
        daemon.kill()  # a power loss: shmqd dies and shared memory is gone
        daemon.wait()
        os.unlink(f"/dev/shm/shmq.{self.ns}.d")
        self.assert_error(self.shmq("create", "d", "--durable", expect=FAILURE), "start shmqd to rebuild")


class JournalFindingTest(ToolTest):
    """recv says what would otherwise look like a hang or a short replay, and finds the
    journal of the running shmqd without being told."""

    def setUp(self):
        super().setUp()
        self.data_dir = tempfile.mkdtemp(prefix="shmq-cli-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.env.pop("SHMQ_DATA_DIR", None)
        self.shmq("create", "d", "--durable", "--capacity", "4K", "--max-message", "32")

    def start_shmqd(self):
        # Told its data directory on the command line only: clients find it through shmqd's record.
        return super().start_shmqd("--data-dir", self.data_dir)

    def test_a_durable_queue_without_shmqd_says_so_at_once(self):
        self.shmq("send", "d", input="waiting\n")
        result = self.shmq("recv", "d", "--timeout", "200ms")
        self.assertEqual(result.stdout, b"")
        self.assert_error(result, "nothing is delivered until shmqd runs")

    def test_recv_finds_the_running_shmqds_journal(self):
        self.start_shmqd()
        lines = "".join(f"line {i}\n" for i in range(1, 201))  # 200 lines: three rings of 4 KiB
        self.shmq("send", "d", "--durable", "--timeout", "20s", input=lines)
        got = self.shmq("recv", "d", "--from", "oldest", "--count", "200", "--timeout", "10s")
        self.assertEqual(got.stdout.decode(), lines, "no SHMQ_DATA_DIR: the journal found through shmqd's record")
        self.assertEqual(got.stderr, b"")
        dumped = self.shmq("dump", "d", "--journal", "--format", "json").stdout.splitlines()
        self.assertEqual(len(dumped), 200, "dump --journal finds it too")

    def test_a_replay_whose_journal_is_missing_says_where_it_looked(self):
        self.start_shmqd()
        self.shmq("send", "d", "--durable", "--timeout", "10s", input="only\n")
        wrong = os.path.join(self.data_dir, "wrong")
        result = self.shmq("recv", "d", "--from", "oldest", "--data-dir", wrong, "--timeout", "500ms")
        self.assert_error(result, "no journal of queue 'd' in " + os.path.join(wrong, "journal", "d"))


class ErrorsTest(ToolTest):
    """shmq-stat --errors: what shmqd kept in its data directory's errors.log."""

    def setUp(self):
        super().setUp()
        self.data_dir = tempfile.mkdtemp(prefix="shmq-cli-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.env["SHMQ_DATA_DIR"] = self.data_dir

    def errors(self):
        return json.loads(self.stat("--errors", "--json").stdout)

    def test_without_shmqd_it_says_there_are_none(self):
        out = self.stat("--errors").stdout.decode()
        self.assertIn(f"no warnings or errors recorded by shmqd for namespace '{self.ns}'", out)
        self.assertIn(os.path.join(self.data_dir, "errors.log") + " does not exist", out)
        self.assertEqual(self.errors(), [])

    def test_an_error_of_shmqd_is_shown_with_a_count_after_a_restart(self):
        self.shmq("create", "d", "--durable")
        os.makedirs(os.path.join(self.data_dir, "journal"), mode=0o700)
        open(os.path.join(self.data_dir, "journal", "d"), "w").close()  # a file where its journal goes
        for run in (1, 2):  # the same error from a restarted shmqd: one entry, counted on
            daemon = self.start_shmqd()
            self.wait_for(lambda: self.errors() and self.errors()[-1]["count"] == run, f"entry counted {run}")
            daemon.terminate()
            self.assertEqual(daemon.wait(10), 0)
        (entry,) = self.errors()
        self.assertEqual(list(entry), ["first", "last", "level", "count", "message"])
        self.assertEqual((entry["level"], entry["count"]), ("error", 2))
        self.assertIn("queue 'd': cannot journal it", entry["message"])
        self.assertRegex(entry["first"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d$")
        self.assertLess(entry["first"], entry["last"])
        lines = self.stat("--errors").stdout.decode().splitlines()
        self.assertIn(f"shmqd's warnings and errors for namespace '{self.ns}'", lines[0])
        self.assertRegex(lines[1], r"^FIRST SEEN +LAST SEEN +COUNT +LEVEL +MESSAGE$")
        self.assertRegex(lines[2], r" 2  error +queue 'd': cannot journal it")

    def test_usage_errors(self):
        self.assert_error(self.stat("--errors", "q", expect=USAGE), "--errors takes no QUEUE")
        self.stat("--errors", "--prometheus", expect=USAGE)
        self.stat("--errors", "--check", expect=USAGE)


class PolicyTest(ToolTest):
    """The delivery policy (issue 18) through the tools: create, shmq-stat, recv's JSON."""

    def queue_exists(self, queue):
        return os.path.exists(f"/dev/shm/shmq.{self.ns}.{queue}")

    def create_with_dead_letter_queue(self, queue="q", *policy):
        """A dead-letter queue "dlq" (its max message leaves room for the origin a dead letter carries), then `queue`."""
        self.shmq("create", "dlq", "--max-message", "128K")
        return self.shmq("create", queue, "--dead-letter", "dlq", *policy)

    def test_create_with_every_flag_and_stat_shows_the_policy(self):
        out = self.create_with_dead_letter_queue("q", "--max-deliveries", "3", "--ack-timeout", "1500ms",
                                                 "--ttl", "2m").stdout.decode()
        self.assertIn("delivery policy: max deliveries 3, dead-letter queue 'dlq', ack timeout 1500ms, ttl 2m\n", out)
        info = self.queue_stat("q")
        self.assertEqual({k: info[k] for k in ("max_deliveries", "dead_letter", "ack_timeout_ms", "ttl_ms")},
                         {"max_deliveries": 3, "dead_letter": "dlq", "ack_timeout_ms": 1500, "ttl_ms": 120000})
        # Unset: null (documented in docs/cli.md).
        dlq = self.queue_stat("dlq")
        self.assertEqual([dlq[k] for k in ("max_deliveries", "dead_letter", "ack_timeout_ms", "ttl_ms")],
                         [None, None, None, None])
        self.assertNotIn("delivery policy", self.shmq("create", "plain").stdout.decode())
        table = self.stat("--sample", "0").stdout.decode()
        self.assertIn("\n  delivery policy: max deliveries 3, dead-letter queue 'dlq', ack timeout 1500ms, ttl 2m\n",
                      table)
        self.assertEqual(table.count("delivery policy"), 1)  # queues without one show none
        text = self.stat("--prometheus").stdout.decode()
        for line in (f'shmq_queue_max_deliveries{{namespace="{self.ns}",queue="q"}} 3',
                     f'shmq_queue_ack_timeout_seconds{{namespace="{self.ns}",queue="q"}} 1.5',
                     f'shmq_queue_ttl_seconds{{namespace="{self.ns}",queue="q"}} 120',
                     f'shmq_queue_dead_letter_info{{namespace="{self.ns}",queue="q",dead_letter="dlq"}} 1',
                     f'shmq_queue_max_deliveries{{namespace="{self.ns}",queue="dlq"}} 0',
                     f'shmq_queue_ttl_seconds{{namespace="{self.ns}",queue="dlq"}} 0'):
            self.assertIn(line + "\n", text)
        self.assertNotIn('queue="dlq",dead_letter=', text)

    def test_each_flag_alone(self):
        self.shmq("create", "a", "--max-deliveries", "254")
        self.shmq("create", "b", "--ack-timeout", "250ms")
        self.shmq("create", "c", "--ttl", "1.5s")
        self.assertEqual(self.queue_stat("a")["max_deliveries"], 254)
        self.assertEqual((self.queue_stat("b")["ack_timeout_ms"], self.queue_stat("b")["ttl_ms"]), (250, None))
        self.assertEqual(self.queue_stat("c")["ttl_ms"], 1500)

    def test_bad_values_exit_2_and_create_nothing(self):
        cases = [
            (["--max-deliveries", "0"], "--max-deliveries: '0' is not a number from 1 to 254"),
            (["--max-deliveries", "255"], "--max-deliveries: '255' is not a number from 1 to 254"),
            (["--max-deliveries", "-1"], "--max-deliveries: '-1' is not a number"),
            (["--max-deliveries", "three"], "--max-deliveries: 'three' is not a number"),
            (["--ack-timeout", "5"], "--ack-timeout: invalid duration '5'"),
            (["--ack-timeout=-1s"], "--ack-timeout: invalid duration '-1s'"),
            (["--ack-timeout", "0"], "--ack-timeout: '0': a duration above 0 is needed"),
            (["--ttl", "0"], "--ttl: '0': a duration above 0 is needed"),
            (["--ttl=-2m"], "--ttl: invalid duration '-2m'"),
            (["--ttl", "1.5x"], "--ttl: invalid duration '1.5x'"),
            (["--ttl", "soon"], "--ttl: invalid duration 'soon'"),
            (["--dead-letter", "bad/name"], "invalid dead-letter queue name 'bad/name'"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assert_error(self.shmq("create", "q", *args, expect=USAGE), message)
                self.assertFalse(self.queue_exists("q"))

    def test_an_unfit_dead_letter_queue_exits_1_and_creates_nothing(self):
        self.assert_error(self.shmq("create", "q", "--dead-letter", "nope", expect=FAILURE),
                          "cannot create queue 'q' with dead-letter queue 'nope': it does not exist")
        self.assert_error(self.shmq("create", "q", "--dead-letter", "q", expect=FAILURE),
                          "a queue cannot be its own dead-letter queue")
        # A dead-letter queue must hold this queue's largest message and its origin.
        self.shmq("create", "small", "--max-message", "64K")
        self.assert_error(self.shmq("create", "q", "--dead-letter", "small", expect=FAILURE),
                          "cannot hold this queue's largest message with its origin")
        self.assertFalse(self.queue_exists("q"))
        # A loop: b's dead letters go to c; c made anew with b as its own.
        self.shmq("create", "c", "--max-message", "128K")
        self.shmq("create", "b", "--dead-letter", "c")
        self.shmq("delete", "c")
        self.assert_error(self.shmq("create", "c", "--max-message", "32K", "--dead-letter", "b", expect=FAILURE),
                          "its dead letters lead back to 'c' (a loop)")
        self.assertFalse(self.queue_exists("c"))

    def test_stat_shows_the_group_counters(self):
        self.create_with_dead_letter_queue("q", "--max-deliveries", "5")
        self.shmq("send", "q", input="a\n")
        self.assertEqual(self.recv_all("q", "--group", "g"), ["a"])
        (group,) = self.queue_stat("q")["groups"]
        self.assertEqual({k: group[k] for k in ("dead_lettered", "dropped", "expired", "rejected", "nacked",
                                                "lease_expired")},
                         {"dead_lettered": 0, "dropped": 0, "expired": 0, "rejected": 0, "nacked": 0,
                          "lease_expired": 0})
        table = self.stat("q", "--sample", "0").stdout.decode()
        self.assertIn("\n    dead-lettered 0, dropped 0 (of which expired 0, rejected 0), nacked 0, lease expired 0\n",
                      table)
        text = self.stat("--prometheus").stdout.decode()
        for family in ("dead_lettered", "dropped", "expired", "rejected", "nacked", "lease_expired"):
            self.assertIn(f'shmq_group_{family}_total{{namespace="{self.ns}",queue="q",group="g"}} 0\n', text)

    def test_recv_json_shows_deliveries(self):
        self.shmq("create", "q")
        self.shmq("send", "q", input="a\n")
        (message,) = self.recv_json("q")
        self.assertEqual(message["deliveries"], 1)
        self.assertNotIn("origin_queue", message)
        self.assertNotIn("reason", message)


class ExecTest(ToolTest):
    """shmq recv --exec CMD: a shell command as a worker."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="shmq-exec-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def exec(self, queue, command, *args, expect=0, timeout=30):
        return self.shmq("recv", queue, "--group", "g", "--exec", command, *args, expect=expect, timeout=timeout)

    def read(self, name):
        with open(os.path.join(self.dir, name), "rb") as file:
            return file.read()

    def group(self, queue="q"):
        return self.groups(queue)["g"]

    def join(self, queue, *groups):
        """Makes the groups before messages are sent: a group made later starts after what the others released."""
        for group in groups:
            self.recv_all(queue, "--group", group)

    def test_help_says_how(self):
        help_text = self.shmq("recv", "--help").stdout.decode()
        for fragment in ("--exec", "SHMQ_DELIVERIES", "exit 99 rejects"):
            self.assertIn(fragment, help_text)
        self.assert_error(self.shmq("recv", "q", "--exec", "true", "--format", "json", expect=USAGE), "--exec")

    def test_exit_0_acks_one_at_a_time_in_order_with_the_payload_and_environment(self):
        self.shmq("create", "q")
        self.join("q", "g", "probe")
        self.shmq("send", "q", "--producer", "p1", input="one\ntwo\nthree\n")
        # mkdir is atomic: a second command running at once would find the lock and fail (a nack).
        script = (f"mkdir {self.dir}/lock || exit 5; cat > {self.dir}/$SHMQ_SEQ; "
                  f"env | grep ^SHMQ_ | sort > {self.dir}/$SHMQ_SEQ.env; cat {self.dir}/$SHMQ_SEQ >> {self.dir}/all; "
                  f"sleep 0.05; rmdir {self.dir}/lock")
        result = self.exec("q", script, "--count", "3")
        self.assertEqual(result.stderr, b"")
        self.assertEqual(self.read("all"), b"onetwothree")
        env = dict(line.split("=", 1) for line in self.read("2.env").decode().splitlines())
        position = self.recv_json("q", "--group", "probe")[1]["position"]
        self.assertEqual(env, {"SHMQ_NAMESPACE": self.ns, "SHMQ_QUEUE": "q", "SHMQ_GROUP": "g",
                               "SHMQ_PRODUCER": "p1", "SHMQ_PRODUCER_ID": "0", "SHMQ_SEQ": "2",
                               "SHMQ_POSITION": str(position), "SHMQ_TIMESTAMP_NS": env["SHMQ_TIMESTAMP_NS"],
                               "SHMQ_DELIVERIES": "1", "SHMQ_REDELIVERED": "0"})
        group = self.group()
        self.assertEqual((group["acked"], group["lag_messages"], group["nacked"]), (3, 0, 0))

    def test_count_and_timeout_work_as_without_exec(self):
        self.shmq("create", "q")
        self.shmq("send", "q", input="1\n2\n3\n")
        self.exec("q", f"cat >> {self.dir}/out", "--count", "2")
        self.assertEqual(self.read("out"), b"12")
        start = time.monotonic()
        self.exec("q", f"cat >> {self.dir}/out", "--timeout", "300ms")
        self.assertGreaterEqual(time.monotonic() - start, 0.3)
        self.assertEqual(self.read("out"), b"123")

    def test_a_command_that_does_not_read_a_large_payload_does_not_block_recv(self):
        self.shmq("create", "q", "--max-message", "200K")
        self.shmq("send", "q", input="x" * 200000 + "\n" + "y" * 150000 + "\n")
        self.exec("q", "sleep 0.2", "--count", "1", timeout=20)  # never reads: the pipe (64 KiB) stays full
        self.exec("q", f"head -c 5 > {self.dir}/head", "--count", "1", timeout=20)  # closes it early: EPIPE
        self.assertEqual(self.read("head"), b"yyyyy")
        self.assertEqual(self.group()["lag_messages"], 0)

    def test_sigterm_waits_for_the_command_and_settles_its_message(self):
        self.shmq("create", "q")
        self.shmq("send", "q", input="a\nb\n")
        recv = subprocess.Popen([SHMQ, "recv", "q", "--group", "g", "--exec",
                                 f"touch {self.dir}/started; sleep 0.5; cat > {self.dir}/done"],
                                env=self.env)
        self.addCleanup(lambda: (recv.kill(), recv.wait()))
        self.wait_for(lambda: os.path.exists(os.path.join(self.dir, "started")), "the command to start")
        recv.send_signal(signal.SIGTERM)
        self.assertEqual(recv.wait(timeout=10), -signal.SIGTERM)
        self.assertEqual(self.read("done"), b"a")
        group = self.group()
        self.assertEqual((group["members"], group["acked"], group["lag_messages"]), (0, 1, 1))

    def test_exit_99_rejects_to_the_dead_letter_queue_with_its_origin(self):
        self.shmq("create", "dlq", "--max-message", "128K")
        self.shmq("create", "q", "--dead-letter", "dlq")
        self.join("q", "g", "probe")
        self.join("dlq", "inspect", "replay", "w")
        self.shmq("send", "q", "--producer", "p1", input="fine\npoison\n")
        position = self.recv_json("q", "--group", "probe")[1]["position"]
        result = self.exec("q", 'test "$(cat)" = fine || exit 99', "--count", "2")
        self.assert_error(result, f"message at position {position} (seq 2, delivery 1): the command exited with "
                                  "status 99: rejected, moved to dead-letter queue 'dlq'")
        (dead,) = self.recv_json("dlq", "--group", "inspect")
        self.assertEqual({k: dead[k] for k in ("payload", "reason", "origin_queue", "origin_group", "origin_producer",
                                               "origin_seq", "origin_position", "origin_deliveries", "deliveries")},
                         {"payload": "poison", "reason": "rejected", "origin_queue": "q", "origin_group": "g",
                          "origin_producer": "p1", "origin_seq": 2, "origin_position": position,
                          "origin_deliveries": 1, "deliveries": 1})
        # Text shows the original payload (so `shmq recv dlq | shmq send q` sends it back as it was).
        self.assertEqual(self.recv_all("dlq", "--group", "replay"), ["poison"])
        # A worker on the dead-letter queue sees the origin in its environment.
        self.shmq("recv", "dlq", "--group", "w", "--count", "1", "--exec",
                  f"echo $SHMQ_REASON $SHMQ_ORIGIN_QUEUE $SHMQ_ORIGIN_GROUP $SHMQ_ORIGIN_PRODUCER $SHMQ_ORIGIN_SEQ "
                  f"$SHMQ_ORIGIN_DELIVERIES $(cat) > {self.dir}/origin")
        self.assertEqual(self.read("origin"), b"rejected q g p1 2 1 poison\n")
        group = self.group()
        # (A dead-lettered message is acked by its group, so `acked` counts it too.)
        self.assertEqual({k: group[k] for k in ("acked", "rejected", "dead_lettered", "dropped", "lag_messages")},
                         {"acked": 2, "rejected": 1, "dead_lettered": 1, "dropped": 0, "lag_messages": 0})
        text = self.stat("--prometheus").stdout.decode()
        self.assertIn(f'shmq_group_rejected_total{{namespace="{self.ns}",queue="q",group="g"}} 1\n', text)
        self.assertIn(f'shmq_group_dead_lettered_total{{namespace="{self.ns}",queue="q",group="g"}} 1\n', text)

    def test_exit_99_without_a_dead_letter_queue_drops_it_counted(self):
        self.shmq("create", "q")
        self.shmq("send", "q", input="x\ny\n")
        self.assert_error(self.exec("q", "exit 99", "--count", "1"),
                          "rejected, dropped (the queue has no dead-letter queue)")
        self.assertEqual(self.recv_all("q", "--group", "g"), ["y"])
        group = self.group()
        self.assertEqual((group["rejected"], group["dropped"], group["dead_lettered"]), (1, 1, 0))

    def test_other_exits_and_signals_nack_it_comes_again_flagged(self):
        self.shmq("create", "q")
        self.shmq("send", "q", input="m\nnext\n")
        # Delivery 1: killed by a signal; delivery 2: exit 1; delivery 3: done.
        script = (f'echo "$SHMQ_DELIVERIES $SHMQ_REDELIVERED $(cat)" >> {self.dir}/log; '
                  'case $SHMQ_SEQ:$SHMQ_DELIVERIES in 1:1) kill -KILL $$;; 1:2) exit 1;; esac')
        result = self.exec("q", script, "--count", "4")
        self.assertEqual(self.read("log"), b"1 0 m\n2 1 m\n3 1 m\n1 0 next\n")
        stderr = result.stderr.decode()
        self.assertIn("(seq 1, delivery 1): the command was killed by signal 9 (SIGKILL): nacked", stderr)
        self.assertIn("(seq 1, delivery 2): the command exited with status 1: nacked", stderr)
        group = self.group()
        self.assertEqual((group["nacked"], group["acked"], group["lag_messages"]), (2, 2, 0))
        self.assertEqual(self.stat("q", "--sample", "0").stdout.decode().count("nacked 2,"), 1)

    def test_a_poison_message_that_kills_recv_three_times_goes_to_the_dead_letter_queue(self):
        self.shmq("create", "dlq", "--max-message", "128K")
        self.shmq("create", "q", "--max-deliveries", "3", "--dead-letter", "dlq")
        self.join("dlq", "inspect")
        self.shmq("send", "q", "--producer", "p1", input="poison\nfine\n")
        # The poison message kills the shmq recv that runs it (its parent: $PPID) with kill -9.
        script = (f'echo "$SHMQ_SEQ $SHMQ_DELIVERIES" >> {self.dir}/log; '
                  f'if [ "$(cat)" = poison ]; then kill -9 $PPID; exit 1; fi; echo ok >> {self.dir}/log')
        for attempt in range(3):
            result = self.exec("q", script, "--count", "1", "--timeout", "10s", expect=-signal.SIGKILL)
        self.exec("q", script, "--count", "1", "--timeout", "10s")
        self.assertEqual(self.read("log").decode().splitlines(), ["1 1", "1 2", "1 3", "2 1", "ok"])
        (dead,) = self.recv_json("dlq", "--group", "inspect")
        self.assertEqual({k: dead[k] for k in ("payload", "reason", "origin_queue", "origin_seq", "origin_producer",
                                               "origin_deliveries")},
                         {"payload": "poison", "reason": "max-deliveries", "origin_queue": "q", "origin_seq": 1,
                          "origin_producer": "p1", "origin_deliveries": 3})
        group = self.group()
        # "fine", and the dead letter: its group acks it as it moves it.
        self.assertEqual({k: group[k] for k in ("dead_lettered", "acked", "lag_messages", "in_flight")},
                         {"dead_lettered": 1, "acked": 2, "lag_messages": 0, "in_flight": 0})
        self.assertEqual(self.recv_all("q", "--group", "g"), [])  # nothing else comes, nothing twice


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
