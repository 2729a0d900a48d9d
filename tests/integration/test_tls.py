"""TLS settings: the client context verifies the server and presents the client certificate.

No broker needed (test_security.py has those): certificates are made with openssl, the
handshakes are real ones over loopback against a Python TLS server that requires a client
certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from _pki import make_pki
from faust.auth import SASLCredentials, SSLCredentials

from streamkpi.app import _credentials
from streamkpi.config import ConfigError, load_settings
from streamkpi.topics import aiokafka_security, ssl_context


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
