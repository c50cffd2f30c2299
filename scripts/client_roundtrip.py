"""A client generated from the OpenAPI document, used for real.

`scripts/conformance.sh` (make conformance) generates a Python client from
the served GET /v1/openapi.json with openapi-python-client (pinned in
requirements-dev.txt) into DIR/artifacts_client, then runs this:

    client_roundtrip.py DIR BASE_URL TOKEN

It uploads bytes, reads the artifact back, downloads the content and
compares it byte for byte, makes and revokes a link, and checks that a
missing artifact comes back as the document's Problem. Exit 0 on success.
"""

from __future__ import annotations

import hashlib
import os
import sys
import uuid


def main() -> int:
    out_dir, base_url, token = sys.argv[1:4]
    sys.path.insert(0, out_dir)
    from artifacts_client import AuthenticatedClient
    from artifacts_client.api.artifacts import download_artifact, get_artifact, put_artifact
    from artifacts_client.api.links import create_link, revoke_link
    from artifacts_client.models import Artifact, CreatedLink, NewLink, Problem, PutResult
    from artifacts_client.types import File

    client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
    # Not UTF-8, with a NUL and CR/LF: must come back byte for byte.
    content = b"\x00\xff\xfe roundtrip \r\n" + os.urandom(64)
    digest = hashlib.sha256(content).hexdigest()
    workflow = f"client-{uuid.uuid4().hex[:8]}"

    put = put_artifact.sync(
        workflow,
        "reports/scan result.bin",
        client=client,
        body=File(payload=content),
        artifact_type="report",
        x_artifact_sha256=digest,
        x_artifact_content_type="application/octet-stream",
    )
    assert isinstance(put, PutResult), f"upload: {put!r}"
    assert put.artifact.path == "reports/scan result.bin", put.artifact.path
    assert put.version.version == 1 and put.version.sha256 == digest, put.version

    artifact = get_artifact.sync(put.artifact.artifact_id, client=client)
    assert isinstance(artifact, Artifact), f"get: {artifact!r}"
    assert artifact.sha256 == digest and artifact.size == len(content)

    download = download_artifact.sync(put.artifact.artifact_id, client=client, version=1)
    assert isinstance(download, File), f"download: {download!r}"
    assert download.payload.read() == content, "downloaded bytes differ from the uploaded ones"

    link = create_link.sync(put.artifact.artifact_id, client=client, body=NewLink(expires_in=600))
    assert isinstance(link, CreatedLink) and link.expires_in == 600, f"link: {link!r}"
    revoked = revoke_link.sync_detailed(link.link_id, client=client)
    assert revoked.status_code == 204, revoked.status_code

    missing = get_artifact.sync(uuid.uuid4().hex, client=client)
    assert isinstance(missing, Problem) and missing.status == 404, f"missing: {missing!r}"

    print(
        f"generated client round trip: uploaded {len(content)} bytes to "
        f"{workflow}/reports/scan result.bin, read, downloaded identical, link made and revoked"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
