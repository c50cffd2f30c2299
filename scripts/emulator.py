#!/usr/bin/env python3
"""Serve moto's AWS emulator with one request at a time.

moto server is not atomic under concurrent requests: two conditional
TransactWriteItems racing on the same item can both succeed (SPEC §11). This
launcher serves moto's WSGI app with a single lock held around each whole
request -- reading the body, running the app, and iterating and closing the
response -- so concurrency tests exercise our code, not the emulator's races.
Connections are still accepted by a threaded server, so a slow client never
blocks the others while it is sending or receiving bytes.

    python scripts/emulator.py --port 0 --port-file .dev/test.port --parent-pid $$

Binds to 127.0.0.1 only. Run it with the project venv's Python (make venv).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable

from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

HOST = "127.0.0.1"
CHUNK = 1 << 20


class SerializedApp:
    """WSGI middleware: at most one request inside the wrapped app at a time."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        # Read the request body before taking the lock, so a slow uploader does
        # not hold up everyone else.
        environ["wsgi.input"] = io.BytesIO(_read_body(environ))
        with self._lock:
            result = self._app(environ, start_response)
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        # The server writes the bytes to the socket after the lock is released.
        return body


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: read to the end
        parts = []
        while chunk := stream.read(CHUNK):
            parts.append(chunk)
        return b"".join(parts)
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        remaining = 0
    parts = []
    while remaining > 0:
        chunk = stream.read(min(remaining, CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _proc_start_time(pid: int) -> str | None:
    """Start time of `pid` from /proc (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):  # zombie or dead: gone
        return "gone"
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start_time is not None:
        return _proc_start_time(pid) == start_time
    return True


def _watch_parent(pid: int, on_gone: Callable[[], None]) -> None:
    start_time = _proc_start_time(pid)
    if start_time == "gone" or not _alive(pid, start_time):
        on_gone()
        return

    def loop() -> None:
        while _alive(pid, start_time):
            time.sleep(0.5)
        logging.getLogger("emulator").warning("parent process %d is gone; stopping", pid)
        on_gone()

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


_DIGEST = threading.local()


def _kms_signs_digests() -> None:
    """Make moto's KMS `Sign` honour `MessageType=DIGEST` for ECDSA keys.

    moto ignores the parameter and hashes the digest again, so a signature
    over a long message (sent, as KMS requires above 4096 bytes, as its
    SHA-256) would not verify. KMS signs the given digest as it is; so does
    this, with `Prehashed`. RAW messages are untouched.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from moto.kms import responses, utils

    digests = {"ECDSA_SHA_256": hashes.SHA256, "ECDSA_SHA_384": hashes.SHA384, "ECDSA_SHA_512": hashes.SHA512}
    plain_sign = responses.KmsResponse.sign
    plain_key_sign = utils.ECDSAPrivateKey.sign

    def sign(self: Any) -> str:
        _DIGEST.on = self._get_param("MessageType") == "DIGEST"
        try:
            return plain_sign(self)
        finally:
            _DIGEST.on = False

    def key_sign(self: Any, message: bytes, signing_algorithm: str) -> bytes:
        if not getattr(_DIGEST, "on", False):
            return plain_key_sign(self, message, signing_algorithm)
        utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
        return self.private_key.sign(message, ec.ECDSA(Prehashed(digests[signing_algorithm]())))

    responses.KmsResponse.sign = sign
    utils.ECDSAPrivateKey.sign = key_sign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1; 0 picks a free one (default 4566)")
    parser.add_argument("--port-file", help="write the port here once listening (removed again on exit)")
    parser.add_argument("--parent-pid", type=int, help="exit as soon as this process is gone")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    log = logging.getLogger("emulator")

    _kms_signs_digests()
    app = SerializedApp(DomainDispatcherApplication(create_backend_app))
    try:
        server = make_server(HOST, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as err:
        log.error("cannot listen on %s:%d: %s", HOST, args.port, err)
        return 2
    port = server.socket.getsockname()[1]
    # moto builds a few self-referencing URLs from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    stopping = threading.Event()

    def stop() -> None:
        if not stopping.is_set():
            stopping.set()
            # shutdown() blocks until serve_forever returns: never call it on
            # the serving thread itself.
            threading.Thread(target=server.shutdown, daemon=True).start()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d; stopping", signum)
        stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    # A background job of a non-interactive shell ignores SIGINT; keep it so.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_signal)

    if args.parent_pid is not None:
        _watch_parent(args.parent_pid, stop)

    if args.port_file:
        _write_atomic(args.port_file, f"{port}\n")
    log.info("moto %s listening on http://%s:%d (one request at a time)", _moto_version(), HOST, port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if args.port_file:
            try:
                os.remove(args.port_file)
            except FileNotFoundError:
                pass
        log.info("stopped")
    return 0


def _moto_version() -> str:
    try:
        from importlib.metadata import version

        return version("moto")
    except Exception:  # noqa: BLE001 - cosmetic only
        return "?"


if __name__ == "__main__":
    sys.exit(main())
