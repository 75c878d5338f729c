"""Differential tests: every tests/diff/*.txt file is replayed against ferrokv
and a reference redis-server 7.0.15; every reply must match byte for byte.

File format (one pytest item per file):
  - each non-empty line is one command in redis-cli quoting;
  - `#` starts a comment line;
  - `~ <command>` compares the reply ignoring element order (every array,
    set and push is sorted, and every map's key/value pairs, at any depth);
  - `!resp 3` / `!resp 2` send HELLO 3 / HELLO 2 to both, replies discarded;
  - `!sleep <ms>` waits.
Each file starts on fresh servers (db 0, empty, RESP2). A command that closes
the connection (QUIT) is compared as `<connection closed>`, and the next
command reconnects both sides (back to RESP2). CLIENT REPLY OFF/SKIP/ON is
tracked, so commands whose reply is suppressed are checked to send nothing.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import harness

DIFF_DIR = harness.REPO_ROOT / "tests" / "diff"
DIFF_FILES = sorted(DIFF_DIR.glob("*.txt"))
MAX_REPORTED = 15

CLOSED = b"<connection closed>"
TIMEOUT = b"<no reply within the timeout>"


@dataclass
class Step:
    lineno: int
    text: str
    args: list[bytes]
    unordered: bool = False
    directive: str | None = None  # "resp" or "sleep"
    value: int = 0


def parse_corpus(path: Path) -> list[Step]:
    steps = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.name}:{lineno}: {line}"
        if line.startswith("!"):
            name, _, arg = line[1:].partition(" ")
            if name not in ("resp", "sleep") or not arg.strip().isdigit():
                raise ValueError(f"{where}: unknown directive (use !resp 2|3 or !sleep <ms>)")
            value = int(arg)
            if name == "resp" and value not in (2, 3):
                raise ValueError(f"{where}: !resp takes 2 or 3")
            steps.append(Step(lineno, line, [], directive=name, value=value))
            continue
        unordered = line.startswith("~ ")
        command = line[2:] if unordered else line
        try:
            args = harness.split_args(command)
        except harness.QuoteError as e:
            raise ValueError(f"{where}: {e}") from None
        steps.append(Step(lineno, line, args, unordered))
    return steps


class Side:
    """One server's connection in the replay."""

    def __init__(self, name: str, endpoint: harness.Endpoint):
        self.name = name
        self.endpoint = endpoint
        self.conn: harness.RawConnection | None = None

    def connection(self) -> harness.RawConnection:
        if self.conn is None:
            self.conn = harness.RawConnection(self.endpoint.host, self.endpoint.port)
        return self.conn

    def send(self, args: list[bytes]) -> None:
        try:
            self.connection().send(args)
        except OSError:
            self.drop()

    def read(self) -> harness.Reply | bytes:
        """The next reply, or a marker; a broken connection is dropped."""
        if self.conn is None:
            return CLOSED
        try:
            return self.conn.read()
        except harness.ConnectionClosed:
            self.drop()
            return CLOSED
        except socket.timeout:
            self.drop()
            return TIMEOUT
        except OSError:
            self.drop()
            return CLOSED

    def silence(self) -> bytes:
        """Bytes that arrived though no reply was due (expected: none)."""
        return b"" if self.conn is None else self.conn.leftover(0.05)

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def dead_server_log(self) -> str:
        p = self.endpoint.process
        if p is not None and not p.alive():
            return f"\n{self.name} died; its log ends with:\n{p.log_tail()}"
        return ""


class ReplyMode:
    """Tracks CLIENT REPLY ON/OFF/SKIP to know whether a reply is due."""

    def __init__(self):
        self.off = False
        self.skip_next = False

    def expects_reply(self, args: list[bytes]) -> bool:
        sub = [a.lower() for a in args[:3]]
        if sub[:2] == [b"client", b"reply"] and len(args) == 3:
            if sub[2] == b"on":
                self.off = self.skip_next = False
                return True
            if sub[2] in (b"off", b"skip"):
                if sub[2] == b"off":
                    self.off = True
                else:
                    self.skip_next = not self.off
                return False
        if self.skip_next:
            self.skip_next = False
            return False
        return not self.off

    def reset(self) -> None:
        self.off = self.skip_next = False


def _show(reply: harness.Reply | bytes) -> str:
    raw = reply if isinstance(reply, bytes) else reply.raw
    text = repr(raw)
    return text if len(text) <= 2000 else text[:2000] + f"... ({len(raw)} bytes)"


def _comparable(reply: harness.Reply | bytes, unordered: bool) -> bytes:
    if isinstance(reply, bytes):
        return reply
    return harness.canonical_unordered(reply) if unordered else reply.raw


def replay(path: Path, ours: Side, ref: Side) -> list[str]:
    """Runs one corpus file; returns a description of every mismatch."""
    mismatches: list[str] = []
    mode = ReplyMode()

    def differ(step: Step, a, b, note: str = "") -> None:
        mismatches.append(
            f"{path.name}:{step.lineno}: {step.text}{note}\n"
            f"    ferrokv:   {_show(a)}\n"
            f"    reference: {_show(b)}"
        )

    for step in parse_corpus(path):
        if step.directive == "sleep":
            time.sleep(step.value / 1000)
            continue
        if step.directive == "resp":
            for side in (ours, ref):
                side.send([b"HELLO", str(step.value).encode()])
                side.read()  # the servers' HELLO maps legitimately differ
            continue
        if ours.conn is None or ref.conn is None:
            # A previous command closed a connection: start both afresh.
            ours.drop(), ref.drop(), mode.reset()
        ours.send(step.args)
        ref.send(step.args)
        if not mode.expects_reply(step.args):
            a, b = ours.silence(), ref.silence()
            if a != b:
                differ(step, a, b, "  (no reply expected)")
            continue
        a, b = ours.read(), ref.read()
        if a is CLOSED or b is CLOSED:
            mode.reset()
        if _comparable(a, step.unordered) != _comparable(b, step.unordered):
            differ(step, a, b, ours.dead_server_log())
            if ours.dead_server_log():
                break

    a, b = ours.silence(), ref.silence()
    if a != b:
        mismatches.append(
            f"{path.name}: end of file: unread bytes differ\n"
            f"    ferrokv:   {_show(a)}\n    reference: {_show(b)}"
        )
    return mismatches


@pytest.fixture
def fresh_pair():
    """A new ferrokv and a new redis-server (or a flushed external target)."""
    started: list[harness.ServerProcess] = []
    try:
        external = harness.external_target()
        if external:
            ours = harness.Endpoint(*external)
            conn = harness.RawConnection(*external)
            assert conn.call("FLUSHALL").raw == b"+OK\r\n"
            conn.close()
        else:
            proc = harness.ServerProcess(harness.ferrokv_binary()).start()
            started.append(proc)
            ours = harness.Endpoint(proc.host, proc.port, proc)
        proc = harness.ServerProcess(harness.reference_binary()).start()
        started.append(proc)
        ref = harness.Endpoint(proc.host, proc.port, proc)
        yield Side("ferrokv", ours), Side("redis-server", ref)
    finally:
        for proc in started:
            proc.stop()


def test_corpus_exists():
    assert DIFF_FILES, f"no differential corpus in {DIFF_DIR}"


@pytest.mark.parametrize("path", DIFF_FILES, ids=[p.name for p in DIFF_FILES])
def test_differential(path, fresh_pair):
    ours, ref = fresh_pair
    try:
        mismatches = replay(path, ours, ref)
    finally:
        ours.drop()
        ref.drop()
    if mismatches:
        shown = "\n".join(mismatches[:MAX_REPORTED])
        more = len(mismatches) - MAX_REPORTED
        tail = f"\n... and {more} more" if more > 0 else ""
        pytest.fail(f"{len(mismatches)} replies differ from redis-server:\n{shown}{tail}", pytrace=False)
