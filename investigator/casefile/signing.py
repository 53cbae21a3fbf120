"""Ed25519 signatures over a case file's manifest (cryptography's Ed25519 keys).

With CASEFILE_SIGNING_KEY set to a private key (PEM, PKCS#8; `manage.py casefile_keygen` makes one), each case
file carries `manifest.sig`: the signature of the exact bytes of `manifest.json`, whose `signing_key` names
the key by the SHA-256 of its public key. The recipient checks it with the public key they were given
(`verify_casefile FILE.zip --public-key KEY.pub.pem`): as the manifest holds every other file's hash, a
valid signature covers the whole case file."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FILE = "manifest.sig"


class SigningKeyError(ValueError):
    pass


def private_key_load(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return key


def public_key_load(path: Path) -> Ed25519PublicKey:
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:  # a private key file works too: its public half is used
            return private_key_load(path).public_key()
        except SigningKeyError:
            raise SigningKeyError(f"{path} holds no Ed25519 public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_pair_generate(path: Path) -> Ed25519PrivateKey:
    """Write a new private key (readable by its owner only) and its public key beside it (`.pub.pem`)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = Path(path)
    with path.open("xb") as handle:  # never overwrite an existing key
        path.chmod(0o600)
        handle.write(pem)
    path.with_name(path.name.removesuffix(".pem") + ".pub.pem").write_text(public_key_pem(key.public_key()))
    return key


def manifest_sign(key: Ed25519PrivateKey, manifest_bytes: bytes) -> bytes:
    return base64.b64encode(key.sign(manifest_bytes)) + b"\n"


def manifest_signature_valid(key: Ed25519PublicKey, manifest_bytes: bytes, signature_file: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_file.strip(), validate=True), manifest_bytes)
    except (InvalidSignature, ValueError):
        return False
    return True
