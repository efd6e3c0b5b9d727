"""Verifying PlaneConnection webhook deliveries in Python (standard library only).

Both schemes are checked with hmac.compare_digest (timing-safe):
  * Standard Webhooks: `webhook-signature` = space-separated `v1,<base64>` entries over
    "<webhook-id>.<webhook-timestamp>.<body>"; any entry may match (during a secret
    rotation the previous secret signs too). The timestamp is signed: 5-minute tolerance.
  * Ed25519 (`"signing": "ed25519"` webhooks): `v1a,<base64>` entries, Ed25519
    signatures of the same "<webhook-id>.<webhook-timestamp>.<body>", checked with the
    webhook's public key (`whpk_` + base64 of 32 bytes) by the `cryptography` package
    (the standard library has no Ed25519). These webhooks send no `X-Webhook-Signature`.
  * The original scheme: `X-Webhook-Signature: sha256=<hex HMAC(secret, body)>` (and
    `X-Webhook-Signature-Previous` during a rotation). Its timestamp is not signed, so a
    captured delivery can be replayed: prefer `webhook-signature`.
Deliveries are retried with the same `webhook-id`: remember the ids you processed.

CLI (used by the project's tests): reads {"secret", "deliveries": [{"headers", "body_base64"}]}
on stdin (`secret`: the webhook's secret, or its `whpk_` public key) and prints one line
per delivery: accepted | duplicate | rejected: <why>.
"""
import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
import time
from datetime import datetime

TOLERANCE_SECONDS = 5 * 60


class VerificationError(Exception):
    pass


def standard_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks scheme (`whsec_` + base64 -> decoded bytes)."""
    if secret.startswith("whsec_"):
        encoded = secret[6:]
        if re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", encoded):
            try:
                key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
            except binascii.Error:
                key = b""
            if 24 <= len(key) <= 64:
                return key
    return secret.encode("utf-8")


def ed25519_verifies(public_key: str, message: bytes, signature_b64: str) -> bool:
    """One `v1a` entry against a `whpk_` key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(public_key[len("whpk_"):], validate=True)
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(signature_b64, validate=True), message)
        return True
    except (InvalidSignature, ValueError, binascii.Error):
        return False


def verify_delivery(secret: str, headers: dict, body: bytes, now: float = None) -> str:
    """Verifies one delivery; `secret` the webhook's secret or its `whpk_` public key,
    `headers` with lower-case names, `body` the raw bytes.
    Returns the delivery id; raises VerificationError."""
    now = time.time() if now is None else now
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    ed25519 = secret.startswith("whpk_")
    if ed25519 and not (msg_id and timestamp and signatures):
        raise VerificationError("no webhook-signature")
    if msg_id and timestamp and signatures:
        if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
            raise VerificationError("timestamp outside the 5-minute tolerance")
        signed = f"{msg_id}.{timestamp}.".encode() + body
        if ed25519:
            for entry in signatures.split(" "):
                version, _, sig = entry.partition(",")
                if version == "v1a" and ed25519_verifies(secret, signed, sig):
                    return msg_id
            raise VerificationError("no matching webhook-signature")
        expected = base64.b64encode(hmac.new(standard_key(secret), signed, hashlib.sha256).digest()).decode()
        for entry in signatures.split(" "):
            version, _, sig = entry.partition(",")
            if version == "v1" and hmac.compare_digest(sig.encode(), expected.encode()):
                return msg_id
        raise VerificationError("no matching webhook-signature")
    # The original scheme (for senders or proxies that drop the webhook-* headers).
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    offered = [headers.get("x-webhook-signature", "")] + headers.get("x-webhook-signature-previous", "").split(",")
    if not any(sig and hmac.compare_digest(sig.encode(), expected.encode()) for sig in offered):
        raise VerificationError("no matching X-Webhook-Signature")
    try:
        sent = datetime.fromisoformat(headers.get("x-webhook-timestamp", "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise VerificationError("timestamp outside the 5-minute tolerance")
    if abs(now - sent) > TOLERANCE_SECONDS:
        raise VerificationError("timestamp outside the 5-minute tolerance")
    return headers.get("x-webhook-delivery", "")


class Deduper:
    """Remembers processed ids (use a database with a TTL >= the retry window in production)."""

    def __init__(self):
        self._seen = set()

    def first_time(self, delivery_id: str) -> bool:
        if delivery_id in self._seen:
            return False
        self._seen.add(delivery_id)
        return True


def main():
    data = json.load(sys.stdin)
    dedupe = Deduper()
    for d in data["deliveries"]:
        headers = {k.lower(): v for k, v in d["headers"].items()}
        try:
            delivery_id = verify_delivery(data["secret"], headers, base64.b64decode(d["body_base64"]))
            print("accepted" if dedupe.first_time(delivery_id) else "duplicate")
        except VerificationError as e:
            print(f"rejected: {e}")


if __name__ == "__main__":
    main()
