"""Writes the certificates the https tests serve, into the directory given:
a private CA (ca.pem) and, signed by it, valid, wrong-name, expired and
expiring-soon server certificates for www.example.test, plus a
self-signed one, and one for the address 127.0.0.1 (loopback.pem).
Python's cryptography is used because openssl 3.0 cannot
date a certificate in the past."""

import datetime
import ipaddress
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
day = datetime.timedelta(days=1)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write(stem, cert, key):
    with open(f"{out}/{stem}.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{out}/{stem}.key", "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def cert(cn, issuer, issuer_key, start, end, ca=False, san=None):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(issuer or name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(san or [x509.DNSName(cn)]), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256()), key


# With no issuer, cert() signs with the subject's own key: a root CA.
ca, ca_key = cert("picomon test CA", None, None, now - 10 * day, now + 365 * day, ca=True)
write("ca", ca, ca_key)
issuer = ca.subject
write("valid", *cert("www.example.test", issuer, ca_key, now - day, now + 300 * day))
write("wrongname", *cert("other.example.test", issuer, ca_key, now - day, now + 300 * day))
write("expired", *cert("www.example.test", issuer, ca_key, now - 9 * day, now - 2 * day))
write("soon", *cert("www.example.test", issuer, ca_key, now - day, now + 10 * day))
write("selfsigned", *cert("www.example.test", None, None, now - day, now + 300 * day))
loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
write("loopback", *cert("127.0.0.1", issuer, ca_key, now - day, now + 300 * day, san=loopback))
