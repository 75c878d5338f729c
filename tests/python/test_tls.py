"""TLS through redis-py (`ssl=True`, `rediss://`), sync and asyncio, against
ferrokv and the reference redis-server started with the same certificates.

The certificates are made at run time with the `openssl` command line tool
(the `cryptography` package is not a test requirement); without it the
module is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
import redis
import redis.asyncio

import harness


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: str) -> None:
    """ca.crt, server.{crt,key} (localhost, 127.0.0.1), client.{crt,key}:
    X.509 v3 certificates (webpki, used by ferrokv, refuses v1 ones)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "2", "-subj", "/CN=ferrokv test CA", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs():
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command line tool to make test certificates")
    d = tempfile.mkdtemp(prefix="ferrokv-tls-")
    make_certs(d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


class TlsServer:
    def __init__(self, binary: str, certs: str):
        self.certs = certs
        self.tls_port = harness.free_port()
        self.process = harness.ServerProcess(binary, [
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", self.path("server.crt"),
            "--tls-key-file", self.path("server.key"),
            "--tls-ca-cert-file", self.path("ca.crt"),
        ]).start()

    def path(self, name: str) -> str:
        return os.path.join(self.certs, name)

    def ssl_kwargs(self, client_cert: bool = True) -> dict:
        kw = {"ssl": True, "ssl_ca_certs": self.path("ca.crt")}
        if client_cert:
            kw.update(ssl_certfile=self.path("client.crt"), ssl_keyfile=self.path("client.key"))
        return kw


@pytest.fixture(scope="module", params=["ferrokv", "redis-server"])
def tls_server(request, certs):
    if harness.external_target():
        pytest.skip("FERROKV_TEST_TARGET is set: cannot start a TLS server")
    binary = harness.ferrokv_binary() if request.param == "ferrokv" else harness.reference_binary()
    srv = TlsServer(binary, certs)
    yield srv
    srv.process.stop()


def test_sync_ssl_true(tls_server):
    r = redis.Redis(host="localhost", port=tls_server.tls_port, **tls_server.ssl_kwargs())
    try:
        assert r.ping() is True
        assert r.set("tls:k", "v") is True
        assert r.get("tls:k") == b"v"
        # The plain port serves the same data; INFO's tcp_port is the plain one.
        plain = redis.Redis(host="127.0.0.1", port=tls_server.process.port)
        assert plain.get("tls:k") == b"v"
        assert plain.info("server")["tcp_port"] == tls_server.process.port
        assert r.config_get("tls-port") == {"tls-port": str(tls_server.tls_port)}
        laddr = r.client_info()["laddr"]
        assert laddr.endswith(f":{tls_server.tls_port}")
    finally:
        r.close()


def test_rediss_url_with_pipeline(tls_server):
    url = f"rediss://localhost:{tls_server.tls_port}/0"
    kw = tls_server.ssl_kwargs()
    del kw["ssl"]
    r = redis.Redis.from_url(url, **kw)
    try:
        pipe = r.pipeline(transaction=True)
        for i in range(200):
            pipe.rpush("tls:list", "x" * 1000)
        pipe.llen("tls:list")
        assert pipe.execute()[-1] >= 200
        assert len(r.lrange("tls:list", 0, -1)) == r.llen("tls:list")
    finally:
        r.delete("tls:list")
        r.close()


def test_client_certificate_is_required_by_default(tls_server):
    r = redis.Redis(host="localhost", port=tls_server.tls_port,
                    **tls_server.ssl_kwargs(client_cert=False))
    try:
        with pytest.raises(redis.ConnectionError):
            r.ping()
    finally:
        r.close()


async def test_asyncio_ssl(tls_server):
    r = redis.asyncio.Redis(host="localhost", port=tls_server.tls_port, protocol=3,
                            **tls_server.ssl_kwargs())
    try:
        assert await r.ping() is True
        await r.set("tls:a", "1")
        assert await r.incr("tls:a") == 2
        async with r.pubsub() as ps:
            await ps.subscribe("tls:ch")
            await ps.get_message(timeout=1.0)
            await r.publish("tls:ch", "hello")
            msg = None
            for _ in range(20):
                msg = await ps.get_message(timeout=1.0, ignore_subscribe_messages=True)
                if msg:
                    break
            assert msg is not None and msg["data"] == b"hello"
    finally:
        await r.aclose()
