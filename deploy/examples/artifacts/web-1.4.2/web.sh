#!/bin/bash
# The demo application of deploy/examples/apprelease.yaml, served by `npm run local` at
# http://127.0.0.1:8090/web-1.4.2/web.sh (artifact format: file). Its hooks call it; it only
# writes inside $APP_DIR (the emulator's sandbox runs it on this machine, one directory per
# instance). A real application would start a service here (systemctl, a process supervisor).
set -eu
case "${1:-}" in
  start)
    echo "web ${ECSOPS_REVISION} (port ${PORT}) started $(date -u +%Y-%m-%dT%H:%M:%SZ) on ${ECSOPS_INSTANCE_ID}" >"${APP_DIR}/web.status"
    ;;
  stop)
    rm -f "${APP_DIR}/web.status"
    ;;
  health)
    grep -q "^web ${ECSOPS_REVISION} " "${APP_DIR}/web.status"
    ;;
  *)
    echo "usage: web.sh start|stop|health" >&2
    exit 2
    ;;
esac
