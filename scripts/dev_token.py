#!/usr/bin/env python3
"""Mint an HS256 bearer token for local development (ARTIFACTS_AUTH_MODE=dev).

    python3 scripts/dev_token.py --org acme --sub dev-user --scopes "artifacts:read artifacts:write"

Claims: sub, org_id, scope (space-separated), iat, exp. The secret is
ARTIFACTS_DEV_JWT_SECRET from the environment, or from --env-file (as written
by `make dev` to .dev/env), which takes precedence when it defines it. Only
the Python standard library is used; the token goes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time

SECRET_VAR = "ARTIFACTS_DEV_JWT_SECRET"
DEFAULT_TTL = "12h"
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret: str, claims: dict[str, object]) -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode("utf-8")) for part in (header, claims)
    )
    mac = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def parse_ttl(text: str) -> int:
    """Seconds from `3600`, `90m`, `12h`, `7d`; negative mints an expired token."""
    m = re.fullmatch(r"(-?\d+)([smhd]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad --ttl {text!r}: use e.g. 3600, 90m, 12h, 7d")
    return int(m.group(1)) * UNITS[m.group(2) or "s"]


def secret_from_env_file(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and key.strip().removeprefix("export ").strip() == SECRET_VAR:
                    return value.strip().strip("'\"")
    except FileNotFoundError:
        sys.exit(f"token: {path} not found (run `make dev` first, or set {SECRET_VAR})")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--org", required=True, help="org_id claim (the tenant)")
    parser.add_argument("--sub", required=True, help="sub claim (the subject)")
    parser.add_argument(
        "--scopes",
        default="artifacts:read artifacts:write",
        help='space-separated scope claim (default "artifacts:read artifacts:write")',
    )
    parser.add_argument("--ttl", type=parse_ttl, default=DEFAULT_TTL, help=f"lifetime, e.g. 3600, 90m, 12h (default {DEFAULT_TTL})")
    parser.add_argument("--env-file", help=f"read {SECRET_VAR} from this KEY=VALUE file")
    args = parser.parse_args(argv)

    secret = secret_from_env_file(args.env_file) if args.env_file else None
    secret = secret or os.environ.get(SECRET_VAR, "")
    if not secret:
        sys.exit(f"token: {SECRET_VAR} is not set (run `make dev` first, or export it)")
    if not args.org or not args.sub:
        sys.exit("token: --org and --sub must not be empty")

    now = int(time.time())
    claims = {
        "sub": args.sub,
        "org_id": args.org,
        "scope": " ".join(args.scopes.split()),
        "iat": now,
        "exp": now + args.ttl,
    }
    print(mint(secret, claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
