#!/usr/bin/env python3
"""Cold start of one function binary to its first response.

Serves the Lambda Runtime API (the part a function uses: next invocation,
response, error) on 127.0.0.1, spawns the binary against it with the
environment of a provisioned emulator, and times spawn -> first response
(cold) and the second response in the same process (warm, the baseline).
The request is GET /v1/artifacts/{random id} from events/upload.json, which
the versions function answers 404 after one real DynamoDB read; other
functions answer it their own way (ingest, which takes S3 events, reports an
invocation error: status -1; purge answers with its summary, counted as 200).
Both answers must carry the same status.

    bench/cold_start.py target/release/artifacts-versions --env-file .dev/env [--runs 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def event() -> bytes:
    with open(os.path.join(ROOT, "events", "upload.json")) as f:
        e = json.load(f)
    artifact_id = uuid.uuid4().hex
    path = f"/v1/artifacts/{artifact_id}"
    e.update(routeKey="GET /v1/artifacts/{artifactId}", rawPath=path, rawQueryString="",
             queryStringParameters={}, pathParameters={"artifactId": artifact_id},
             body=None, isBase64Encoded=False)
    e["requestContext"].update(routeKey=e["routeKey"], requestId=uuid.uuid4().hex)
    e["requestContext"]["http"].update(method="GET", path=path)
    return json.dumps(e).encode()


class Runtime(BaseHTTPRequestHandler):
    pending: "list[bytes]" = []
    answers: "list[tuple[float, int]]" = []
    done = threading.Event()

    def log_message(self, *args):  # quiet
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the function process was stopped mid-poll

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        while not Runtime.pending:
            if Runtime.done.wait(0.01):
                # The run is over and the function is being stopped: hang up.
                self.close_connection = True
                return
        body = Runtime.pending.pop(0)
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", uuid.uuid4().hex)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        payload = self.rfile.read(length)
        # An HTTP function answers with a statusCode; a scheduled one (purge)
        # with its own summary, counted as 200: it answered.
        if self.path.endswith("/response"):
            answer = json.loads(payload)
            status = answer.get("statusCode", 200) if isinstance(answer, dict) else 200
        else:
            status = -1
        Runtime.answers.append((time.perf_counter(), status))
        self.send_response(202)
        self.end_headers()


def load_env(path: str) -> dict:
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip("'\"")
    return env


def run_once(binary: str, env: dict, port: int) -> "tuple[float, float]":
    Runtime.pending[:] = [event(), event()]
    Runtime.answers.clear()
    Runtime.done.clear()
    child_env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
                 "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
                 "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_LEVEL": "ERROR",
                 "PATH": os.environ.get("PATH", "")}
    started = time.perf_counter()
    child = subprocess.Popen([binary], env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while len(Runtime.answers) < 2 and time.time() < deadline and child.poll() is None:
            time.sleep(0.001)
        if len(Runtime.answers) < 2:
            raise SystemExit(f"no responses from {binary} (exit {child.poll()})")
        (first, s1), (second, s2) = Runtime.answers[:2]
        if s1 != s2 or s1 == 0:
            raise SystemExit(f"{binary}: unexpected statuses {s1}, {s2}")
        return first - started, second - first, s1
    finally:
        Runtime.done.set()
        child.kill()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--env-file", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = load_env(args.env_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cold, warm, statuses = [], [], set()
    for _ in range(args.runs):
        c, w, status = run_once(args.binary, env, server.server_address[1])
        cold.append(c)
        warm.append(w)
        statuses.add(status)
    server.shutdown()
    size = os.path.getsize(args.binary)
    c, w = statistics.median(cold) * 1000, statistics.median(warm) * 1000
    print(json.dumps({"binary": os.path.basename(args.binary), "sizeBytes": size,
                      "runs": args.runs, "coldMsMedian": round(c, 1), "warmMsMedian": round(w, 1),
                      "coldOverWarm": round(c / w, 1), "statuses": sorted(statuses)}))


if __name__ == "__main__":
    sys.exit(main())
