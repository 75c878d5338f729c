"""Plumbing shared by the Python tests: server processes, raw RESP I/O, and
the redis-cli style line splitter used by the differential corpus.

Nothing here depends on pytest so it can be unit tested (test_harness.py)
and reused from a REPL when debugging a differential failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every server the tests start is disposable: never persist anything.
EPHEMERAL_ARGS = ["--save", "", "--appendonly", "no"]


# --------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ferrokv_binary() -> str:
    """The server under test: $FERROKV_BIN, else the release build.

    FERROKV_BIN may name any program with redis-server's command line, so
    `FERROKV_BIN=redis-server pytest tests/python` checks the tests
    themselves against real Redis (password fixtures included).
    """
    override = os.environ.get("FERROKV_BIN")
    if override:
        found = shutil.which(override)
        if not found:
            raise RuntimeError(f"FERROKV_BIN={override!r} is not an executable")
        return found
    path = REPO_ROOT / "target" / "release" / "ferrokv"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `cargo build --release` (scripts/test.sh does)")
    return str(path)


def reference_binary() -> str:
    found = shutil.which(os.environ.get("FERROKV_REFERENCE_BIN", "redis-server"))
    if not found:
        raise RuntimeError("redis-server is not on PATH (scripts/test.sh installs it)")
    return found


def external_target() -> tuple[str, int] | None:
    """FERROKV_TEST_TARGET=host:port makes fixtures use a running server."""
    target = os.environ.get("FERROKV_TEST_TARGET")
    if not target:
        return None
    host, _, port = target.rpartition(":")
    return (host or "127.0.0.1", int(port))


@dataclass
class ServerProcess:
    """A redis-server-compatible process on a free loopback port."""

    binary: str
    extra: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    proc: subprocess.Popen | None = None
    workdir: str = ""
    log_path: str = ""

    def start(self, attempts: int = 5) -> "ServerProcess":
        last_error = ""
        for _ in range(attempts):
            self.workdir = tempfile.mkdtemp(prefix="ferrokv-test-")
            self.log_path = os.path.join(self.workdir, "server.log")
            self.port = free_port()
            args = [
                self.binary,
                "--port", str(self.port),
                "--bind", self.host,
                "--dir", self.workdir,
                *EPHEMERAL_ARGS,
                *self.extra,
            ]
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            if self._wait_ready(timeout=10.0):
                return self
            last_error = self.log_tail()
            self.stop()
        raise RuntimeError(f"{self.binary} did not start; last log:\n{last_error}")

    def _wait_ready(self, timeout: float) -> bool:
        """Ready once PING gets any reply (+PONG, or -NOAUTH with a password)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # died: most likely the port was taken meanwhile
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    reply = s.recv(8)
                    # -LOADING: up, but the dataset is not there yet.
                    if reply[:1] in (b"+", b"-") and not reply.startswith(b"-LOADING"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def log_tail(self, n: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Endpoint:
    """Where a fixture's server listens; `process` is None for an external one."""

    host: str
    port: int
    process: ServerProcess | None = None
    password: str | None = None

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


# --------------------------------------------------------------------------
# redis-cli quoting
# --------------------------------------------------------------------------

_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}
_HEX = "0123456789abcdefABCDEF"


class QuoteError(ValueError):
    pass


def split_args(line: str) -> list[bytes]:
    """Splits a line the way redis-cli does (sdssplitargs).

    Double quotes understand \\n \\r \\t \\b \\a \\xHH and \\<any> (that
    character); single quotes are literal except \\'. A closing quote must be
    followed by whitespace or the end of the line. Quotes may start in the
    middle of a word (foo"bar" is foobar). Arguments come back as bytes
    (latin-1 for \\xHH, UTF-8 for the rest of the text).
    """
    out: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            return out
        cur = bytearray()
        while i < n and not line[i].isspace():
            c = line[i]
            if c == '"':
                i = _double_quoted(line, i + 1, cur)
            elif c == "'":
                i = _single_quoted(line, i + 1, cur)
            else:
                cur += c.encode()
                i += 1
        out.append(bytes(cur))


def _after_quote(line: str, i: int) -> int:
    if i < len(line) and not line[i].isspace():
        raise QuoteError("closing quote must be followed by a space")
    return i


def _double_quoted(line: str, i: int, cur: bytearray) -> int:
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 3 < n and line[i + 1] == "x" and line[i + 2] in _HEX and line[i + 3] in _HEX:
            cur.append(int(line[i + 2 : i + 4], 16))
            i += 4
        elif c == "\\" and i + 1 < n:
            nxt = line[i + 1]
            cur += _SIMPLE_ESCAPES.get(nxt, nxt).encode()
            i += 2
        elif c == '"':
            return _after_quote(line, i + 1)
        else:
            cur += c.encode()
            i += 1
    raise QuoteError("unbalanced double quotes")


def _single_quoted(line: str, i: int, cur: bytearray) -> int:
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] == "'":
            cur += b"'"
            i += 2
        elif c == "'":
            return _after_quote(line, i + 1)
        else:
            cur += c.encode()
            i += 1
    raise QuoteError("unbalanced single quotes")


def encode_command(args: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


# --------------------------------------------------------------------------
# RESP2/RESP3 reply reader
# --------------------------------------------------------------------------


class ProtocolError(Exception):
    pass


class ConnectionClosed(Exception):
    pass


@dataclass
class Reply:
    """One complete reply: its exact bytes plus the parsed shape.

    `header` is the type byte and length line (e.g. b"*3\\r\\n"); aggregates
    keep their elements in `children` (a map's keys and values alternate).
    An attribute (`|`) is kept as `attribute` of the reply that follows it.
    """

    raw: bytes
    kind: str
    header: bytes
    children: list["Reply"] = field(default_factory=list)
    attribute: "Reply | None" = None


# Types whose header line is the whole reply.
_LINE_TYPES = set("+-:_,#(")
# Types with a length followed by that many bytes and CRLF.
_BLOB_TYPES = set("$!=")
# Aggregates: element count (maps/attributes count pairs).
_AGGREGATE_TYPES = {"*": 1, "~": 1, ">": 1, "%": 2, "|": 2}


class ReplyReader:
    """Reads whole replies from a socket, keeping any surplus for the next."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed()
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos : end + 2])
                self.pos = end + 2
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        data = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return data

    def pending(self) -> bytes:
        return bytes(self.buf[self.pos :])

    def read(self) -> Reply:
        header = self._line()
        kind = chr(header[0])
        body = header[1:-2]
        if kind in _LINE_TYPES:
            return Reply(header, kind, header)
        if kind in _BLOB_TYPES:
            length = _length(header)
            if length < 0:  # RESP2 null bulk ($-1)
                return Reply(header, kind, header)
            data = self._exact(length + 2)
            if data[-2:] != b"\r\n":
                raise ProtocolError(f"blob of {length} bytes not followed by CRLF")
            return Reply(header + data, kind, header)
        if kind in _AGGREGATE_TYPES:
            count = _length(header)
            if count < 0:  # RESP2 null array (*-1)
                return Reply(header, kind, header)
            children = [self.read() for _ in range(count * _AGGREGATE_TYPES[kind])]
            raw = header + b"".join(c.raw for c in children)
            reply = Reply(raw, kind, header, children)
            if kind == "|":
                inner = self.read()
                inner.attribute = reply
                inner.raw = raw + inner.raw
                return inner
            return reply
        raise ProtocolError(f"unknown reply type byte {header[:1]!r} in {bytes(header)!r} {body!r}")


def _length(header: bytes) -> int:
    try:
        return int(header[1:-2])
    except ValueError:
        raise ProtocolError(f"bad length line {header!r}") from None


def canonical_unordered(reply: Reply) -> bytes:
    """Bytes of `reply` with every aggregate's elements sorted, at every depth.

    Arrays, sets and pushes sort their elements; maps sort their key/value
    pairs. Used for `~ ` lines, whose reply order is unspecified (SMEMBERS,
    KEYS, HGETALL, SCAN's key list...).
    """
    if not reply.children:
        return reply.raw
    parts = [canonical_unordered(c) for c in reply.children]
    if reply.kind in ("%", "|"):
        parts = [parts[i] + parts[i + 1] for i in range(0, len(parts), 2)]
    prefix = canonical_unordered(reply.attribute) if reply.attribute else b""
    return prefix + reply.header + b"".join(sorted(parts))


class RawConnection:
    """A plain socket speaking RESP, used by the differential runner."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = ReplyReader(self.sock)

    def send(self, args: list[bytes]) -> None:
        self.sock.sendall(encode_command(args))

    def read(self) -> Reply:
        return self.reader.read()

    def call(self, *args: bytes | str) -> Reply:
        self.send([a.encode() if isinstance(a, str) else a for a in args])
        return self.read()

    def leftover(self, wait: float = 0.05) -> bytes:
        """Whatever arrived unrequested (buffered or within `wait` seconds)."""
        extra = self.reader.pending()
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                extra += chunk
        except OSError:
            pass
        return extra

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
