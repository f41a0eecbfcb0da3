"""`[server] tls_cert` / `tls_key`: arca serves HTTPS itself, and the token flow works over it."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.auth.helpers import PASSWORD
from tests.auth.servers import write_config
from tests.e2e.server import free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_arca_serves_https_with_the_configured_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    config = write_config(tmp_path / "config")
    config.write_text(f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n' + config.read_text())
    port = free_port()
    log = (tmp_path / "arca.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arca",
            "serve",
            "--port",
            str(port),
            "--storage",
            str(tmp_path / "data"),
            "--config",
            str(config),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    url = f"https://127.0.0.1:{port}"
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(verify=context, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get(f"{url}/healthz")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, (tmp_path / "arca.log").read_text()
                    assert time.monotonic() < deadline, (tmp_path / "arca.log").read_text()
                    time.sleep(0.2)
            challenge = client.get(f"{url}/v2/")
            assert challenge.status_code == 401
            assert f'realm="{url}/auth/token"' in challenge.headers["WWW-Authenticate"]
            token = client.get(
                f"{url}/auth/token",
                params={"scope": "repository:team/app:pull,push"},
                auth=("writer", PASSWORD),
            ).json()["token"]
            started = client.post(
                f"{url}/v2/team/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}
            )
            assert started.status_code == 202
        # plain HTTP to the TLS port gets no registry answer
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=5).status_code
        except httpx.TransportError:
            plain = None
        assert plain in (None, 400)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
