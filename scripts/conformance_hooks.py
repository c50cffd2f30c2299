"""Schemathesis hooks for `make conformance` (scripts/conformance.sh).

Loaded through SCHEMATHESIS_HOOKS=conformance_hooks (PYTHONPATH=scripts).

- Auth: every request carries a dev token, rotating over two orgs with
  read+write and a read-only one of the first org (mostly the first org) (CONFORMANCE_INFO names
  the file artifacts-conformance wrote: {"url", "tokens"}), so generated
  calls also cross orgs (404, never another org's data) and lack scopes (403).
- Check `problem_json_on_4xx`: every 4xx is RFC 9457 application/problem+json
  whose `status` is the response's, and a 400 names its `field` -- except
  the gateway's own answers that API Gateway HTTP APIs give themselves and
  the document declares ({"message": ...} on 401 authorizer refusal, 404 no
  route, 413 too large); and no problem passes a parser's message through
  (internal detail, and a sign the field was not named).
- Check `scope_before_input`: the read-only token gets 403 on every
  operation that needs artifacts:write, however bad the rest of the request
  (the gateway's own 404/413 aside).
- Counts every response per operation and prints the table at exit.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import re
import threading

import schemathesis

with open(os.environ["CONFORMANCE_INFO"], encoding="utf-8") as f:
    _INFO = json.load(f)
# Mostly org A with read+write, so that stateful chains (create -> read ->
# delete) mostly stay in one org; every tenth call another org, every tenth
# read-only.
_A, _B, _READER = (_INFO["tokens"][k] for k in ("conf-a", "conf-b", "conf-a-reader"))
_TOKENS = itertools.cycle([_A, _A, _A, _B, _A, _A, _A, _A, _READER, _A])
_LOCK = threading.Lock()
_COUNTS: collections.Counter[str] = collections.Counter()
_STATUSES: collections.Counter[int] = collections.Counter()


@schemathesis.auth(refresh_interval=None)
class RotatingDevTokens:
    def get(self, case, ctx):
        with _LOCK:
            return next(_TOKENS)

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def after_call(context, case, response):
    with _LOCK:
        _COUNTS[case.operation.label] += 1
        _STATUSES[response.status_code] += 1


_INTERNALS = re.compile(r"at line \d+ column \d+|Error\(|panicked|\bserde\b")
def _content_type(response):
    value = response.headers.get("content-type", [""])
    return (value[0] if isinstance(value, list) else value).split(";")[0].strip()


GATEWAY_MESSAGES = {401: "Unauthorized", 404: "Not Found", 413: "Request Entity Too Large"}


@schemathesis.check
def problem_json_on_4xx(ctx, response, case):
    status = response.status_code
    if not 400 <= status < 500:
        return None
    if case.method.upper() == "HEAD":
        return None  # HEAD answers carry no body (RFC 9110 §9.3.2)
    content_type = _content_type(response)
    try:
        body = json.loads(response.content or b"null")
    except ValueError as e:
        raise AssertionError(f"{status} body is not JSON: {e}") from e
    if content_type == "application/json" and body == {"message": GATEWAY_MESSAGES.get(status)}:
        return None  # API Gateway's own answer, declared in the document.
    if content_type != "application/problem+json":
        raise AssertionError(f"{status} with Content-Type {content_type!r}, not application/problem+json")
    if not isinstance(body, dict):
        raise AssertionError(f"{status} problem is not an object: {body!r}")
    missing = [k for k in ("type", "title", "status", "detail") if k not in body]
    if missing:
        raise AssertionError(f"{status} problem lacks {missing}: {body!r}")
    if body["status"] != status:
        raise AssertionError(f"problem status {body['status']} on a {status} response")
    if status == 400 and not body.get("field"):
        raise AssertionError(f"400 problem does not name the field: {body!r}")
    # A parser's or library's message passed through: an internal detail,
    # and a sign the field was not named (serde: "... at line 1 column 9").
    if _INTERNALS.search(str(body.get("detail", ""))):
        raise AssertionError(f"{status} problem detail leaks parser internals: {body['detail']!r}")
    return None


@schemathesis.check
def scope_before_input(ctx, response, case):
    """A token without the operation's scope gets 403 whatever else is wrong
    with the request ("scope before parameters"): it learns nothing more."""
    sent = response.request.headers.get("Authorization", "")
    if sent != f"Bearer {_READER}":
        return None
    needed = {
        scope
        for requirement in case.operation.definition.raw.get("security") or []
        for scope in requirement.get("bearer", [])
    }
    if "artifacts:write" not in needed:
        return None
    if response.status_code != 403 and _content_type(response) != "application/json":
        raise AssertionError(
            f"the read-only token got {response.status_code}, not 403, on an operation that needs artifacts:write"
        )
    return None


def _report():
    if not _COUNTS:
        return
    width = max(len(k) for k in _COUNTS)
    print("\nrequests generated per operation:")
    for label, n in sorted(_COUNTS.items()):
        print(f"  {label:<{width}}  {n:>6}")
    print(f"  {'total':<{width}}  {sum(_COUNTS.values()):>6}")
    print("responses by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(_STATUSES.items())))


atexit.register(_report)
