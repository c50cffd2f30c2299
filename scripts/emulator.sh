#!/usr/bin/env bash
# Start, stop and locate the local AWS emulator (moto, via scripts/emulator.py).
#
#   scripts/emulator.sh start [--name NAME] [--port PORT] [--parent-pid PID]
#   scripts/emulator.sh stop  [--name NAME]
#   scripts/emulator.sh url   [--name NAME]
#
# `start` runs the emulator in the background on 127.0.0.1, waits until it
# answers, records .dev/NAME.{pid,url} (log in .dev/NAME.log) and prints the
# URL. If NAME is already running it just prints its URL. --port 0 picks a free
# port; --parent-pid makes the emulator exit when that process is gone.
# `stop` ends the emulator recorded under NAME (if any). `url` prints its URL,
# or fails if it is not running. NAME defaults to "emulator", PORT to 4566.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dev_dir="$root/.dev"
python="${VENV:-$root/.venv}/bin/python"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
name=emulator port=4566 parent_pid=
while [[ $# -gt 0 ]]; do
    case $1 in
        --name) name=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --parent-pid) parent_pid=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "emulator: bad --name '$name'" >&2; exit 2; }
[[ $port =~ ^[0-9]+$ ]] || { echo "emulator: bad --port '$port'" >&2; exit 2; }

pid_file="$dev_dir/$name.pid"
url_file="$dev_dir/$name.url"
port_file="$dev_dir/$name.port"
log_file="$dev_dir/$name.log"

# The recorded pid, if that process is still our emulator.
running_pid() {
    local pid
    [[ -f $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'emulator\.py' || return 1
    fi
    echo "$pid"
}

# Succeeds once anything answers HTTP at the URL.
answers() {
    "$python" - "$1" <<'EOF'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2).close()
except urllib.error.HTTPError:
    pass  # an HTTP error status is still an answer
except Exception:
    sys.exit(1)
EOF
}

forget() { rm -f "$pid_file" "$url_file" "$port_file"; }

start() {
    local pid url i
    if pid=$(running_pid) && [[ -f $url_file ]]; then
        cat "$url_file"
        return 0
    fi
    forget
    if [[ ! -x $python ]]; then
        echo "emulator: $python not found; run 'make venv' first" >&2
        exit 1
    fi
    mkdir -p "$dev_dir"
    local args=(--port "$port" --port-file "$port_file")
    [[ -n $parent_pid ]] && args+=(--parent-pid "$parent_pid")
    # Detached from the terminal's stdin; output to the log only.
    nohup "$python" "$root/scripts/emulator.py" "${args[@]}" </dev/null >>"$log_file" 2>&1 &
    pid=$!
    echo "$pid" >"$pid_file"
    for ((i = 0; i < 300; i++)); do # up to 30 s
        if ! kill -0 "$pid" 2>/dev/null; then
            forget
            echo "emulator: failed to start on 127.0.0.1:$port; last lines of $log_file:" >&2
            tail -n 15 "$log_file" >&2
            if tail -n 15 "$log_file" | grep -qi 'in use'; then
                echo "emulator: to use the emulator already listening there, set AWS_ENDPOINT_URL=http://127.0.0.1:$port" >&2
            fi
            exit 1
        fi
        if [[ -s $port_file ]]; then
            url="http://127.0.0.1:$(<"$port_file")"
            if answers "$url"; then
                echo "$url" >"$url_file"
                echo "$url"
                return 0
            fi
        fi
        sleep 0.1
    done
    echo "emulator: no answer after 30 s; see $log_file" >&2
    kill "$pid" 2>/dev/null || true
    forget
    exit 1
}

stop() {
    local pid i
    if ! pid=$(running_pid); then
        forget
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do # up to 5 s, then force
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "emulator: '$name' (pid $pid) did not stop; killing it" >&2
        kill -9 "$pid" 2>/dev/null || true
    fi
    forget
}

url() {
    if running_pid >/dev/null && [[ -f $url_file ]]; then
        cat "$url_file"
    else
        echo "emulator: '$name' is not running" >&2
        exit 1
    fi
}

case $cmd in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *) usage ;;
esac
