#!/usr/bin/env bash
# Obtain and run the Temporal development server (embedded, SQLite file) for ab-upgrade.
#
#   ./temporal-dev.sh ensure    print the path of a usable `temporal` CLI (obtaining it if needed)
#   ./temporal-dev.sh start     start the dev server in the background (idempotent), wait until it answers
#   ./temporal-dev.sh stop      stop the server this script started
#   ./temporal-dev.sh status    say whether it runs, where, and where its log is
#
# Where the CLI comes from, first match wins:
#   1. $TEMPORAL_CLI
#   2. `temporal` on PATH
#   3. ${XDG_CACHE_HOME:-$HOME/.cache}/ab-upgrade/bin/temporal
#   4. built with `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into that directory
#      (v1.5.1 is the newest tag whose go.mod has no `replace`, so `go install` works)
#   5. the official release tarball from GitHub (needs internet)
#
# Environment: TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233), TEMPORAL_IP (127.0.0.1),
# AB_UPGRADE_STATE (state dir: database, log, pidfile; default ~/.local/state/ab-upgrade),
# TEMPORAL_START_TIMEOUT (seconds to wait for the frontend, default 60),
# TEMPORAL_UI_CODEC_ENDPOINT (the Web UI decodes payloads there, e.g. the URL `ab-upgrade
# codec-server` prints; unset: none).
set -euo pipefail

TEMPORAL_VERSION="1.5.1"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/ab-upgrade"
CACHE_BIN="$CACHE_DIR/bin"
STATE_DIR="${AB_UPGRADE_STATE:-$HOME/.local/state/ab-upgrade}"
PORT="${TEMPORAL_PORT:-7233}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
IP="${TEMPORAL_IP:-127.0.0.1}"
START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-60}"
PIDFILE="$STATE_DIR/temporal.pid"
LOGFILE="$STATE_DIR/temporal.log"
DBFILE="$STATE_DIR/temporal.db"

say() { printf '%s\n' "$*" >&2; }
die() { say "temporal-dev: $*"; exit 1; }

usable() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }

build_with_go() {
  command -v go >/dev/null 2>&1 || return 1
  say "temporal-dev: building the Temporal CLI v$TEMPORAL_VERSION with go install (takes a few minutes)..."
  mkdir -p "$CACHE_BIN"
  GOBIN="$CACHE_BIN" go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_VERSION" >&2 || return 1
  usable "$CACHE_BIN/temporal"
}

download_release() {
  local os arch url tmp
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) return 1 ;;
  esac
  url="https://github.com/temporalio/cli/releases/download/v$TEMPORAL_VERSION/temporal_cli_${TEMPORAL_VERSION}_${os}_${arch}.tar.gz"
  tmp="$(mktemp -d)"
  say "temporal-dev: downloading $url"
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 -o "$tmp/temporal.tar.gz" "$url" || { rm -rf "$tmp"; return 1; }
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$tmp/temporal.tar.gz" "$url" || { rm -rf "$tmp"; return 1; }
  else
    rm -rf "$tmp"; return 1
  fi
  tar -xzf "$tmp/temporal.tar.gz" -C "$tmp" temporal || { rm -rf "$tmp"; return 1; }
  mkdir -p "$CACHE_BIN"
  install -m 0755 "$tmp/temporal" "$CACHE_BIN/temporal"
  rm -rf "$tmp"
  usable "$CACHE_BIN/temporal"
}

find_cli() {
  if [ -n "${TEMPORAL_CLI:-}" ]; then
    usable "$TEMPORAL_CLI" || die "TEMPORAL_CLI=$TEMPORAL_CLI is not an executable temporal CLI"
    printf '%s\n' "$TEMPORAL_CLI"; return
  fi
  local onpath
  onpath="$(command -v temporal 2>/dev/null || true)"
  if usable "$onpath"; then printf '%s\n' "$onpath"; return; fi
  if usable "$CACHE_BIN/temporal"; then printf '%s\n' "$CACHE_BIN/temporal"; return; fi
  if build_with_go || download_release; then printf '%s\n' "$CACHE_BIN/temporal"; return; fi
  die "no temporal CLI: set TEMPORAL_CLI, put temporal on PATH, install Go (to build v$TEMPORAL_VERSION), or allow downloads from github.com"
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

healthy() {
  "$1" operator cluster health --address "$IP:$PORT" --command-timeout 3s >/dev/null 2>&1
}

cmd_start() {
  local cli pid deadline
  cli="$(find_cli)"
  mkdir -p "$STATE_DIR"
  if pid="$(running_pid)"; then
    say "temporal-dev: already running (pid $pid) at $IP:$PORT, UI http://$IP:$UI_PORT, log $LOGFILE"
    return 0
  fi
  if healthy "$cli"; then
    say "temporal-dev: a Temporal server (not started by this script) already answers at $IP:$PORT"
    return 0
  fi
  say "temporal-dev: starting $cli server start-dev on $IP:$PORT (UI $UI_PORT), database $DBFILE"
  # setsid: the server keeps running after this shell exits and does not get the terminal's ^C.
  # WAL, synced at checkpoints: survives the server being killed, and a 1000-host campaign ran in
  # 1.24 x its ideal time instead of 3.3 x with SQLite's defaults (npm run bench:campaign).
  # Eager activities: a worker gets the activity its workflow task schedules in the reply to that
  # task (what the README recommends for a cluster, and what the tests run with).
  setsid "$cli" server start-dev \
    --db-filename "$DBFILE" --ip "$IP" --port "$PORT" --ui-port "$UI_PORT" \
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
    --dynamic-config-value system.enableActivityEagerExecution=true \
    ${TEMPORAL_UI_CODEC_ENDPOINT:+--ui-codec-endpoint "$TEMPORAL_UI_CODEC_ENDPOINT"} \
    >>"$LOGFILE" 2>&1 </dev/null &
  pid=$!
  printf '%s\n' "$pid" >"$PIDFILE"
  deadline=$((SECONDS + START_TIMEOUT))
  until healthy "$cli"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 20 "$LOGFILE" >&2 || true
      die "the server exited during start-up; log: $LOGFILE"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "the server (pid $pid) did not answer within ${START_TIMEOUT}s; log: $LOGFILE"
    fi
    sleep 0.5
  done
  say "temporal-dev: ready (pid $pid): TEMPORAL_ADDRESS=$IP:$PORT, UI http://$IP:$UI_PORT, log $LOGFILE"
}

cmd_stop() {
  local pid i
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"
    say "temporal-dev: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "temporal-dev: pid $pid ignored SIGTERM for 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  say "temporal-dev: stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    if healthy "$(find_cli)"; then
      say "temporal-dev: running (pid $pid) at $IP:$PORT, UI http://$IP:$UI_PORT, database $DBFILE, log $LOGFILE"
    else
      say "temporal-dev: pid $pid runs but $IP:$PORT does not answer yet; log $LOGFILE"
      return 1
    fi
  else
    say "temporal-dev: not running (state dir $STATE_DIR)"
    return 3
  fi
}

case "${1:-start}" in
  ensure) find_cli ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h | --help | help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (use ensure, start, stop or status)" ;;
esac
