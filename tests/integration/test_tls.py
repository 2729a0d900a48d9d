"""TLS settings: the client context verifies the server and presents the client certificate.

Certificates are made with openssl for each test; the handshakes are real ones over a
loopback socket against a Python TLS server that requires a client certificate.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials

from streamkpi.app import _credentials
from streamkpi.config import ConfigError, load_settings
from streamkpi.topics import aiokafka_security, ssl_context


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> Path:
    """Write ca.pem, server.{pem,key} (for 127.0.0.1) and client.{pem,key} into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem", cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext, cwd=directory,
        )  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def _handshake(pki: Path, client: ssl.SSLContext) -> str:
    """Connect with ``client`` to a server requiring a client cert; return the client's CN."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    server_ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert")
        subject = dict(part[0] for part in cert["subject"])
        if not seen.done():
            seen.set_result(subject["commonName"])
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        name = await asyncio.wait_for(seen, 10)
        writer.close()
        return name
    finally:
        server.close()
        await server.wait_closed()


async def test_mutual_tls_context_presents_the_client_certificate(pki: Path) -> None:
    settings = load_settings(
        kafka={
            "protocol": "SSL",
            "ssl_cafile": pki / "ca.pem",
            "ssl_certfile": pki / "client.pem",
            "ssl_keyfile": pki / "client.key",
        }
    )
    context = ssl_context(settings)
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert await _handshake(pki, context) == "client"
    assert aiokafka_security(settings)["ssl_context"].verify_mode is ssl.CERT_REQUIRED


async def test_without_a_client_certificate_the_server_refuses(pki: Path) -> None:
    settings = load_settings(kafka={"protocol": "SSL", "ssl_cafile": pki / "ca.pem"})
    context = ssl_context(settings)
    assert context is not None
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.TimeoutError)):
        await _handshake(pki, context)


async def test_faust_gets_the_same_tls_context_for_ssl_and_sasl_ssl(pki: Path) -> None:
    # Regression (#12): _credentials used SSLCredentials(cafile=...), which raises TypeError
    # (Faust passes purpose=None to ssl.create_default_context): SSL workers never started.
    tls = {
        "ssl_cafile": pki / "ca.pem",
        "ssl_certfile": pki / "client.pem",
        "ssl_keyfile": pki / "client.key",
    }
    ssl_creds = _credentials(load_settings(kafka={"protocol": "SSL", **tls}))
    assert isinstance(ssl_creds, SSLCredentials)
    assert await _handshake(pki, ssl_creds.context) == "client"
    sasl = {"sasl_username": "u", "sasl_password": "p", "sasl_mechanism": "SCRAM-SHA-512"}
    sasl_creds = _credentials(load_settings(kafka={"protocol": "SASL_SSL", **tls, **sasl}))
    assert isinstance(sasl_creds, SASLCredentials)
    assert sasl_creds.ssl_context is not None
    assert await _handshake(pki, sasl_creds.ssl_context) == "client"


def test_a_key_without_its_certificate_is_refused(pki: Path) -> None:
    with pytest.raises(ConfigError, match="ssl_keyfile needs ssl_certfile"):
        load_settings(kafka={"protocol": "SSL", "ssl_keyfile": pki / "client.key"})
    with pytest.raises(ConfigError, match=r"ssl_certfile .* is not a readable file"):
        load_settings(kafka={"protocol": "SSL", "ssl_certfile": pki / "missing.pem"})
