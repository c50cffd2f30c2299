#!/usr/bin/env python3
"""Verify a bundle's manifest signature (SPEC §7, §18) without anything of the store.

    verify_bundle.py KEY.pem BUNDLE.zip

KEY.pem is `GET /v1/signing-key?format=pem`. Reads the ZIP with the
standard library: the first entry is the manifest (MANIFEST.json), the
second its signature (MANIFEST.json.sig), a DSSE envelope of payloadType
application/vnd.artifacts.bundle-manifest+json whose payload must be the
manifest's exact bytes and whose signature (ECDSA P-256 / SHA-256 over the
DSSE v1 pre-authentication encoding) is checked with the `cryptography`
package. Then every other entry's size and sha256 against the manifest,
with nothing missing or extra. Prints the manifest and exits 0 when
everything holds; else names what failed and exits 1. The integration
tests (tests/tests/attestation.rs) use it as the independent verifier.
"""

import base64
import hashlib
import json
import sys
import zipfile

# The DSSE pieces are the attestation verifier's (the same directory).
from verify_attestation import fail, load_p256_key, signed

PAYLOAD_TYPE = "application/vnd.artifacts.bundle-manifest+json"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    key = load_p256_key(argv[1])
    if key is None:
        return fail("the key is not a P-256 public key")
    with zipfile.ZipFile(argv[2]) as z:
        infos = z.infolist()
        if len(infos) < 2:
            return fail("no manifest and signature")
        manifest_name, sig_name = infos[0].filename, infos[1].filename
        if sig_name != manifest_name + ".sig":
            return fail(f"the second entry is {sig_name!r}, not {manifest_name}.sig")
        try:
            manifest_bytes = z.read(infos[0])
            envelope = json.loads(z.read(infos[1]))
        except (zipfile.BadZipFile, ValueError) as e:
            return fail(f"{manifest_name}: {e}")
        if envelope.get("payloadType") != PAYLOAD_TYPE:
            return fail(f"{sig_name}: unexpected payloadType")
        payload = base64.b64decode(envelope["payload"], validate=True)
        if payload != manifest_bytes:
            return fail(f"{manifest_name}: not the bytes {sig_name} signs")
        if not signed(key, envelope, payload):
            return fail(f"{sig_name}: no signature verifies with this key")
        manifest = json.loads(manifest_bytes)
        expected = {f["path"]: f for f in manifest["files"]}
        for info in infos[2:]:
            f = expected.pop(info.filename, None)
            if f is None:
                return fail(f"{info.filename}: not in the manifest")
            try:
                data = z.read(info)
            except zipfile.BadZipFile as e:
                return fail(f"{info.filename}: {e}")
            if (
                len(data) != f["size"]
                or hashlib.sha256(data).hexdigest() != f["sha256"]
            ):
                return fail(f"{info.filename}: does not match the manifest")
        if expected:
            return fail(f"{min(expected)}: missing from the ZIP")
    print(json.dumps(manifest, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
