"""A throw-away PKI for the TLS tests: a CA, a server certificate for 127.0.0.1 and a client
certificate it signs, and a second, untrusted CA with a client certificate of its own."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: the password of the client's (encrypted) private key
CLIENT_KEY_PASSWORD = "client-key-pass"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption() if password is None
        else serialization.BestAvailableEncryption(password.encode()))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def make_pki(directory: Path) -> dict[str, Path]:
    """Write the PKI's PEM files into ``directory``; returns them by role."""
    ca_key, rogue_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _cert("assetwatch test CA", ca_key, "assetwatch test CA", ca_key, ca=True)
    rogue = _cert("untrusted CA", rogue_key, "untrusted CA", rogue_key, ca=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = _cert("127.0.0.1", server_key, "assetwatch test CA", ca_key, ca=False, server=True)
    client = _cert("assetwatch-worker", client_key, "assetwatch test CA", ca_key, ca=False)
    rogue_client_key = ec.generate_private_key(ec.SECP256R1())
    rogue_client = _cert("intruder", rogue_client_key, "untrusted CA", rogue_key, ca=False)
    files = {
        "ca": _pem(ca),
        "rogue_ca": _pem(rogue),
        "server_key_and_chain": _key(server_key) + _pem(server) + _pem(ca),
        "client_cert": _pem(client),
        "client_key": _key(client_key, CLIENT_KEY_PASSWORD),
        "rogue_client_cert": _pem(rogue_client),
        "rogue_client_key": _key(rogue_client_key),
    }
    paths = {}
    for role, data in files.items():
        path = directory / f"{role}.pem"
        path.write_bytes(data)
        path.chmod(0o600)
        paths[role] = path
    return paths
