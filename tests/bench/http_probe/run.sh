#!/usr/bin/env bash
# The server-library probe: the same 638-octet answer from bare evhttp, bare h2o
# (SO_REUSEPORT loops and a shared listener), libmicrohttpd and nginx (a static file),
# each under wrk -t2 -c64 keep-alive for SECS, ROUNDS rounds alternating the servers.
# Prints one line per server and round: rate and p99. Probes are built in /tmp.
#   tests/bench/http_probe/run.sh [ROUNDS] [SECS] [servers...]
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${1:-1}
SECS=${2:-8}
shift 2 || true
SERVERS=("$@")
[ ${#SERVERS[@]} -gt 0 ] || SERVERS=(evhttp h2o h2o-shared mhd nginx)
CF="-O2 -Wall -Wextra"
B=$(mktemp -d /tmp/http-probe.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$B"' EXIT
# h2o is what smki uses (tools/deps.sh); the other candidates need their -dev packages
# (apt-get install libevent-dev libmicrohttpd-dev), and are skipped without them.
gcc $CF -o "$B/h2o" probe_h2o.c $(pkg-config --cflags --libs libh2o-evloop) -lssl -lcrypto -lpthread
pkg-config --exists libevent_pthreads && gcc $CF -o "$B/evhttp" probe_evhttp.c -levent -levent_pthreads -lpthread
pkg-config --exists libmicrohttpd && gcc $CF -o "$B/mhd" probe_mhd.c -lmicrohttpd
mkdir -p "$B/www" "$B/ng/tmp"
/usr/bin/python3 -c "
b = bytearray(b'x' * 638); b[0:12] = b'{\"results\":['; b[-2:] = b'}\n'
open('$B/www/a.json', 'wb').write(b)"
chmod -R a+rX "$B"
cat >"$B/ng/nginx.conf" <<NG
worker_processes 2; daemon off; pid $B/ng/nginx.pid; error_log $B/ng/error.log;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000; keepalive_timeout 60; open_file_cache max=100;
  default_type application/json;
  client_body_temp_path $B/ng/tmp; proxy_temp_path $B/ng/tmp; fastcgi_temp_path $B/ng/tmp;
  uwsgi_temp_path $B/ng/tmp; scgi_temp_path $B/ng/tmp;
  server { listen 127.0.0.1:18099; root $B/www; } }
NG
port=18090
for r in $(seq 1 "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    port=$((port + 1))
    case $s in evhttp | mhd) [ -x "$B/$s" ] || { echo "round $r $s: skipped (its -dev package is missing)"; continue; } ;; esac
    case $s in
      evhttp) "$B/evhttp" $port 2 & ;;
      h2o) "$B/h2o" $port 2 & ;;
      h2o-shared) "$B/h2o" $port 2 shared & ;;
      mhd) "$B/mhd" $port 2 & ;;
      nginx) port=18099; /usr/sbin/nginx -c "$B/ng/nginx.conf" -p "$B/ng" 2>/dev/null & ;;
    esac
    pid=$!
    sleep 0.3
    path=/a.json
    len=$(curl -s "http://127.0.0.1:$port$path" | wc -c)
    out=$(wrk -t2 -c64 -d"${SECS}s" --latency "http://127.0.0.1:$port$path")
    kill $pid; wait $pid 2>/dev/null || true
    rate=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
    err=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr '\n' ' ' || true)
    printf 'round %d %-11s %10s req/s  p99 %8s  body %s  %s load %s\n' "$r" "$s" "$rate" "$p99" "$len" "$err" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
