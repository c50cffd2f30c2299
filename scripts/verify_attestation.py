#!/usr/bin/env python3
"""Verify a publish attestation (SPEC §18) without anything of the store.

    verify_attestation.py KEY.pem ATTESTATION.json [FILE]

KEY.pem is `GET /v1/signing-key?format=pem`; ATTESTATION.json is
`GET /v1/artifacts/{id}/versions/{n}/attestation`. Checks the DSSE
signature (ECDSA P-256 / SHA-256 over the DSSE v1 pre-authentication
encoding) with the `cryptography` package, the in-toto statement and
predicate types, and, given FILE, that FILE's sha256 is the subject's.
Prints the statement and exits 0 when everything holds, 1 otherwise.
The integration tests (tests/tests/attestation.rs) use it as the
independent verifier.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:artifacts:predicate:publish:v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def fail(why: str) -> int:
    print(f"FAILED: {why}", file=sys.stderr)
    return 1


def load_p256_key(path: str) -> ec.EllipticCurvePublicKey | None:
    """The PEM public key at `path`, if it is a P-256 key."""
    with open(path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        return None
    return key


def signed(key: ec.EllipticCurvePublicKey, envelope: dict, payload: bytes) -> bool:
    """Whether one of the DSSE envelope's signatures verifies over PAE(type, payload)."""
    message = pae(envelope["payloadType"], payload)
    for signature in envelope.get("signatures", []):
        try:
            key.verify(base64.b64decode(signature["sig"]), message, ec.ECDSA(hashes.SHA256()))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    key = load_p256_key(argv[1])
    if key is None:
        return fail("the key is not a P-256 public key")
    with open(argv[2], "rb") as f:
        envelope = json.load(f)
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        return fail("unexpected payloadType")
    payload = base64.b64decode(envelope["payload"], validate=True)
    if not signed(key, envelope, payload):
        return fail("no signature verifies with this key")
    statement = json.loads(payload)
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        return fail("not a publish statement")
    if len(argv) == 4:
        with open(argv[3], "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        subjects = statement.get("subject", [])
        if len(subjects) != 1 or subjects[0]["digest"]["sha256"].lower() != digest:
            return fail("the file is not the attested subject")
    print(json.dumps(statement, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
