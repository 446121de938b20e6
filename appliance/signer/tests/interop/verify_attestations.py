"""Independent check of stella-signer output with python securesystemslib + cryptography.

Usage: verify_attestations.py MANIFEST.json
The manifest lists DSSE envelopes with their public keys, and one certificate chain with the
CT log key. Every check prints one OK line; any failure raises (non-zero exit).
"""
import base64
import datetime
import hashlib
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

OIDC_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OIDC_ISSUER_LEGACY = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")


def check_envelope(case):
    with open(case["envelope"], "rb") as f:
        raw = f.read()
    data = json.loads(raw)
    public_key = serialization.load_pem_public_key(case["public_key_pem"].encode())
    key = SSlibKey.from_crypto(public_key, keyid=case["keyid"], scheme=case["scheme"])
    envelope = Envelope.from_dict(data)
    verified = envelope.verify([key], 1)
    assert case["keyid"] in verified, verified
    payload = json.loads(envelope.payload)
    assert payload["_type"] == "https://in-toto.io/Statement/v1", payload["_type"]

    # Envelope.from_dict rewrites the dict it is given, so tamper with a fresh copy.
    fresh = json.loads(raw)
    tampered = Envelope.from_dict(dict(fresh, payload=base64.b64encode(envelope.payload + b" ").decode()))
    try:
        tampered.verify([key], 1)
    except VerificationError:
        pass
    else:
        raise AssertionError("a tampered payload verified")
    print(f"OK dsse {case['scheme']} {case['keyid'][:16]}")


def der_utf8(value):
    assert value[0] == 0x0C, value
    length = value[1]
    assert length < 0x80
    return value[2 : 2 + length].decode()


def check_certificates(chain):
    with open(chain["leaf_der"], "rb") as f:
        leaf = x509.load_der_x509_certificate(f.read())
    with open(chain["root_der"], "rb") as f:
        root = x509.load_der_x509_certificate(f.read())
    root.verify_directly_issued_by(root)
    leaf.verify_directly_issued_by(root)
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca, constraints

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [chain["identity"]], san
    issuer_v2 = leaf.extensions.get_extension_for_oid(OIDC_ISSUER_V2).value.value
    assert der_utf8(issuer_v2) == chain["oidc_issuer"], issuer_v2
    legacy = leaf.extensions.get_extension_for_oid(OIDC_ISSUER_LEGACY).value.value
    assert legacy == chain["oidc_issuer"].encode(), legacy
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign, usage
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CODE_SIGNING in list(eku), eku
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == datetime.timedelta(minutes=10), lifetime
    leaf_spki = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(leaf_spki).hexdigest() == chain["leaf_keyid"]
    print("OK certificate chain, SAN, OIDC issuer (v2 + legacy), KU, EKU, 10-minute validity")

    # Embedded SCT, verified the way sigstore-python does (RFC 6962 section 3.2).
    ct_key = serialization.load_pem_public_key(chain["ct_public_key_pem"].encode())
    ct_spki = ct_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert len(scts) == 1, scts
    sct = scts[0]
    assert sct.log_id == hashlib.sha256(ct_spki).digest()
    issuer_spki = root.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tbs = leaf.tbs_precertificate_bytes
    epoch = datetime.datetime(1970, 1, 1)
    timestamp_ms = (sct.timestamp.replace(tzinfo=None) - epoch) // datetime.timedelta(milliseconds=1)
    signed = (
        struct.pack("!BBQH", sct.version.value, 0, timestamp_ms, 1)
        + hashlib.sha256(issuer_spki).digest()
        + len(tbs).to_bytes(3, "big")
        + tbs
        + len(sct.extension_bytes).to_bytes(2, "big")
        + sct.extension_bytes
    )
    ct_key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
    print("OK embedded SCT verifies against the CT log key")
    check_with_stock_sigstore(chain, leaf, root, ct_spki)


def check_with_stock_sigstore(chain, leaf, root, ct_spki):
    """When sigstore-python is importable, run its own SCT and identity checks too."""
    try:
        from sigstore._internal.sct import verify_sct
        from sigstore._internal.trust import Keyring
        from sigstore.verify.policy import Identity
        from sigstore_models.common import v1 as common_v1
    except ImportError:
        if os.environ.get("CI"):
            raise AssertionError("CI is set but the sigstore package is missing from this python")
        print("SKIP stock sigstore-python checks: the sigstore package is not installed")
        return
    keyring = Keyring(
        [
            common_v1.PublicKey(
                raw_bytes=base64.b64encode(ct_spki).decode(), key_details=common_v1.PublicKeyDetails.PKIX_ECDSA_P256_SHA_256
            )
        ]
    )
    verify_sct(leaf, [root], keyring)
    Identity(identity=chain["identity"], issuer=chain["oidc_issuer"]).verify(leaf)
    print("OK sigstore-python verify_sct and Identity policy accept the leaf certificate")


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    for case in manifest["envelopes"]:
        check_envelope(case)
    check_certificates(manifest["chain"])
    print("ALL OK")


if __name__ == "__main__":
    main()
