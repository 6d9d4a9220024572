// The init script the lifecycle benches package as their EU: `start` puts a sleep in the
// background and returns at once, `status` says whether it runs (0) or not (3).
export const SERVICE = `#!/bin/sh
case "$1" in
start) [ -f /run/svc.pid ] && kill -0 "$(cat /run/svc.pid)" 2>/dev/null && exit 0
  sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > /run/svc.pid ;;
stop) [ -f /run/svc.pid ] && kill "$(cat /run/svc.pid)" 2>/dev/null; rm -f /run/svc.pid ;;
status) [ -f /run/svc.pid ] && kill -0 "$(cat /run/svc.pid)" 2>/dev/null && exit 0; exit 3 ;;
esac
exit 0
`;
