"""Unit tests of the harness itself (quoting, RESP reader); no server needed."""

import socket

import pytest

from harness import (
    QuoteError,
    ReplyReader,
    canonical_unordered,
    encode_command,
    split_args,
)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("SET k v", [b"SET", b"k", b"v"]),
        ("  GET   k  ", [b"GET", b"k"]),
        ('SET k "a b"', [b"SET", b"k", b"a b"]),
        ('SET k "\\r\\n\\t\\b\\a\\\\\\""', [b"SET", b"k", b'\r\n\t\b\a\\"']),
        ('SET k "\\x00\\xff\\x4A"', [b"SET", b"k", b"\x00\xffJ"]),
        ('SET k "\\xZZ"', [b"SET", b"k", b"xZZ"]),
        ("SET k 'a\\nb'", [b"SET", b"k", b"a\\nb"]),
        ("SET k 'it\\'s'", [b"SET", b"k", b"it's"]),
        ('SET k ""', [b"SET", b"k", b""]),
        ("SET k ''", [b"SET", b"k", b""]),
        ('SET k foo"bar"', [b"SET", b"k", b"foobar"]),
        ("SET k caf\u00e9", [b"SET", b"k", "caf\u00e9".encode()]),
        ("", []),
    ],
)
def test_split_args_matches_redis_cli(line, expected):
    assert split_args(line) == expected


@pytest.mark.parametrize("line", ['SET k "abc', "SET k 'abc", 'SET k "a"b', "SET k 'a'b"])
def test_split_args_rejects_bad_quoting(line):
    with pytest.raises(QuoteError):
        split_args(line)


def test_encode_command():
    assert encode_command([b"GET", b"k"]) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def _reader_over(data: bytes, chunk: int = 3) -> ReplyReader:
    """A reader over a socketpair fed in small chunks to exercise refills."""
    a, b = socket.socketpair()
    for i in range(0, len(data), chunk):
        a.sendall(data[i : i + chunk])
    a.close()
    return ReplyReader(b)


REPLIES = [
    b"+OK\r\n",
    b"-ERR unknown command 'x', with args beginning with: \r\n",
    b":-42\r\n",
    b"$5\r\nhe\r\no\r\n",
    b"$0\r\n\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"*0\r\n",
    b"*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n$1\r\nx\r\n",
    b"_\r\n",
    b",3.14\r\n",
    b",inf\r\n",
    b"#t\r\n",
    b"!10\r\nSYNTAX bad\r\n",
    b"=15\r\ntxt:Some string\r\n",
    b"(3492890328409238509324850943850943825024385\r\n",
    b"%2\r\n+a\r\n:1\r\n+b\r\n%1\r\n+c\r\n~1\r\n:2\r\n",
    b"~2\r\n+x\r\n+y\r\n",
    b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
    b"|1\r\n+ttl\r\n:3600\r\n*2\r\n:1\r\n:2\r\n",
]


def test_reader_returns_each_reply_exactly():
    reader = _reader_over(b"".join(REPLIES))
    for expected in REPLIES:
        assert reader.read().raw == expected
    assert reader.pending() == b""


def test_reader_parses_shape():
    reply = _reader_over(REPLIES[8]).read()
    assert reply.kind == "*"
    assert [c.kind for c in reply.children] == [":", "*", "$"]
    assert [c.raw for c in reply.children[1].children] == [b"+a\r\n", b"$-1\r\n"]
    attributed = _reader_over(REPLIES[-1]).read()
    assert attributed.kind == "*" and attributed.attribute.kind == "|"


def test_unordered_canonical_form_sorts_arrays_sets_and_map_pairs():
    def canon(data):
        return canonical_unordered(_reader_over(data).read())

    assert canon(b"*2\r\n+b\r\n+a\r\n") == canon(b"*2\r\n+a\r\n+b\r\n")
    assert canon(b"~2\r\n+b\r\n+a\r\n") == canon(b"~2\r\n+a\r\n+b\r\n")
    assert canon(b"%2\r\n+k2\r\n+v2\r\n+k1\r\n+v1\r\n") == canon(b"%2\r\n+k1\r\n+v1\r\n+k2\r\n+v2\r\n")
    # Pairs stay pairs: swapping values between keys is a difference.
    assert canon(b"%2\r\n+k1\r\n+v2\r\n+k2\r\n+v1\r\n") != canon(b"%2\r\n+k1\r\n+v1\r\n+k2\r\n+v2\r\n")
    # Nested (SCAN-like) replies sort at every level.
    assert canon(b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\na\r\n") == canon(
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    )
    assert canon(b"*2\r\n+a\r\n+b\r\n") != canon(b"*2\r\n+a\r\n+c\r\n")
