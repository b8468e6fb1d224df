#!/bin/bash
# The demo application of deploy/examples/apprelease.yaml, served by `npm run local` at
# http://127.0.0.1:8090/web-<version>/web.sh (artifact format: file). Its hooks call it:
#   web.sh start    starts the HTTP server (python3 standard library, what a stock Linux host has)
#                   in the background, waits until it answers /healthz, writes $APP_DIR/web.status
#   web.sh stop     SIGTERM (graceful: the listening socket closes, requests in flight and
#                   keep-alive connections finish; idle ones close after 2 s), SIGKILL after 15 s
#   web.sh health   GET /healthz answers 200 with this revision ("ok $ECSOPS_REVISION")
# The server binds $BIND_ADDR:$PORT (BIND_ADDR default: $ECS_PRIVATE_IP, which the emulator's
# sandbox gives each instance, a 127.x.y.z address of its own; else 0.0.0.0; PORT default 8080):
#   GET /          "hello from web <version> on <instance>" (200), or 500 in a bad build
#   GET /healthz   "ok <version>" (200; 503 once stopping)
#   GET /metrics   Prometheus text format: web_requests_total{code} and web_request_errors_total
#                  (application requests only: not /healthz or /metrics), web_version_info{version}
# It writes only inside $APP_DIR (web.pid, web.status, web.log). deploy/examples/artifacts/ holds
# copies that differ only in the two settings below (test/unit/deploy/demo-app.test.ts checks it).
set -eu
APP_VERSION=1.4.3 # reported when ECSOPS_REVISION is not set (run by hand)
APP_FAIL=0        # 1 = a bad build: every application request answers 500

APP_DIR=${APP_DIR:-$PWD}
PORT=${PORT:-8080}
BIND_ADDR=${BIND_ADDR:-${ECS_PRIVATE_IP:-0.0.0.0}}
VERSION=${ECSOPS_REVISION:-$APP_VERSION}
PIDFILE="$APP_DIR/web.pid"
HOST=$BIND_ADDR
[ "$HOST" != 0.0.0.0 ] || HOST=127.0.0.1

SERVER=$(
  cat <<'PY'
import os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

version = os.environ['WEB_VERSION']
instance = os.environ.get('WEB_INSTANCE', '')
fail = os.environ.get('WEB_FAIL') == '1'
lock = threading.Lock()
answered = {200: 0, 500: 0}  # both series exist from the start, so rate() sees the first increase
errors = 0
stopping = threading.Event()

def metrics():
    with lock:
        lines = ['# HELP web_requests_total Application requests answered, by HTTP status code.',
                 '# TYPE web_requests_total counter']
        lines += ['web_requests_total{code="%d"} %d' % (c, n) for c, n in sorted(answered.items())]
        lines += ['# HELP web_request_errors_total Application requests answered with a 5xx status.',
                  '# TYPE web_request_errors_total counter', 'web_request_errors_total %d' % errors,
                  '# HELP web_version_info The version this process serves.',
                  '# TYPE web_version_info gauge', 'web_version_info{version="%s"} 1' % version]
    return '\n'.join(lines) + '\n'

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive
    timeout = 2  # an idle keep-alive connection closes after 2 s
    server_version = 'web/' + version

    def log_message(self, *args):
        pass

    def answer(self, code, body, ctype='text/plain; charset=utf-8'):
        data = body.encode()
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('X-Web-Version', version)
        if stopping.is_set():
            self.send_header('Connection', 'close')
            self.close_connection = True
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(data)

    def do_GET(self):
        global errors
        path = self.path.split('?', 1)[0]
        if path == '/healthz':
            return self.answer(503 if stopping.is_set() else 200, 'ok %s\n' % version)
        if path == '/metrics':
            return self.answer(200, metrics(), 'text/plain; version=0.0.4; charset=utf-8')
        code = 500 if fail else 200
        with lock:
            answered[code] = answered.get(code, 0) + 1
            if code >= 500:
                errors += 1
        self.answer(code, '%s from web %s on %s\n' % ('error' if fail else 'hello', version, instance))

    do_HEAD = do_GET

class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the connections in flight

httpd = Server((os.environ['WEB_BIND'], int(os.environ['WEB_PORT'])), Handler)

def on_term(*_):
    stopping.set()
    threading.Thread(target=httpd.shutdown, daemon=True).start()

signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
print('web %s listening on %s:%s' % (version, *httpd.server_address[:2]), flush=True)
httpd.serve_forever(poll_interval=0.2)
httpd.server_close()
print('web %s stopped' % version, flush=True)
PY
)

# probe <path>: the body of a 200 answer of the running server; fails otherwise. HTTP/1.0 over
# bash's /dev/tcp (the server closes the connection after answering), in a subshell.
probe() (
  exec 3<>"/dev/tcp/$HOST/$PORT" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$1" "$HOST" "$PORT" >&3
  IFS= read -r -t 5 line <&3 || exit 1
  status=${line#* }
  status=${status%% *}
  while IFS= read -r -t 5 line <&3 && [ -n "${line%$'\r'}" ]; do :; done
  [ "$status" = 200 ] || exit 1
  cat <&3
)

# running <pid>: the pid is this app's live server (the server's command line names $APP_DIR).
running() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ $stat != Z* ]] && ps -o args= -p "$1" | grep -qF -- "$APP_DIR"
}

stop_server() {
  [ -f "$PIDFILE" ] || return 0
  local pid i
  pid=$(cat "$PIDFILE")
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      running "$pid" || break
      sleep 0.1
    done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start)
    stop_server
    rm -f "${APP_DIR}/web.status"
    WEB_BIND=$BIND_ADDR WEB_PORT=$PORT WEB_VERSION=$VERSION WEB_FAIL=$APP_FAIL WEB_INSTANCE=${ECSOPS_INSTANCE_ID:-} \
      nohup python3 -c "$SERVER" "$APP_DIR" </dev/null >>"$APP_DIR/web.log" 2>&1 &
    echo $! >"$PIDFILE"
    for ((i = 0; i < 100; i++)); do
      if probe /healthz >/dev/null 2>&1; then
        echo "web ${VERSION} (http://${HOST}:${PORT}) started $(date -u +%Y-%m-%dT%H:%M:%SZ) on ${ECSOPS_INSTANCE_ID:-?}" >"${APP_DIR}/web.status"
        exit 0
      fi
      running "$(cat "$PIDFILE")" || break
      sleep 0.1
    done
    echo "web: the server did not answer http://${HOST}:${PORT}/healthz; last lines of $APP_DIR/web.log:" >&2
    tail -n 5 "$APP_DIR/web.log" >&2 || true
    stop_server
    exit 1
    ;;
  stop)
    stop_server
    rm -f "${APP_DIR}/web.status"
    ;;
  health)
    [ "$(probe /healthz)" = "ok ${VERSION}" ]
    ;;
  *)
    echo "usage: web.sh start|stop|health" >&2
    exit 2
    ;;
esac
