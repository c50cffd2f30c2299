#!/usr/bin/env python3
"""The seed-001 bundle design, reimplemented as the baseline of `bundle_time`
and `bundle_rss` (SPEC §20): boto3 GETs every object of the bundle into an
in-memory `zipfile` with deflate (zlib's default level), then hands over the
archive's bytes — as `download_bundle` in seed 001 does
(`zip_file.writestr(path, obj['Body'].read())`, `zip_buffer.getvalue()`).

    peer_bundle.py --bucket B --prefix peer/ --out bundle.zip

Reads the same plaintexts from the same emulator as our bundle (bench.rs
`bundle-seed` writes them under `peer/`). Prints one JSON object: seconds from
the first request to the archive's bytes in hand, and this process's peak RSS.
"""

import argparse
import io
import json
import resource
import time
import zipfile

import boto3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    s3 = boto3.client("s3")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w", zipfile.ZIP_DEFLATED) as zip_file:
        for key in sorted(keys):
            obj = s3.get_object(Bucket=args.bucket, Key=key)
            zip_file.writestr(key[len(args.prefix):], obj["Body"].read())
    archive = zip_buffer.getvalue()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(args.out, "wb") as f:
        f.write(archive)
    print(json.dumps({"seconds": seconds, "files": len(keys), "bytes": len(archive),
                      "rssBeforeKiB": rss_before, "peakKiB": peak}))


if __name__ == "__main__":
    main()
