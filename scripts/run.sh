#!/usr/bin/env bash
# make run: a local HTQ on one machine. Starts a private redis-server (unless
# HTQ_REDIS_URL or HTQ_REDIS_ADDRS points at one), then the API, a scheduler
# and a dispatcher, prints how to call them, and stops everything on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=tmp/run
mkdir -p "$run_dir"
pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap cleanup EXIT
# Ctrl-C (or a TERM) is how a user stops `make run`: that is success, not an
# error (exiting 130 would make make print "Error 130").
trap 'cleanup; exit 0' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z ${HTQ_REDIS_URL:-} && -z ${HTQ_REDIS_ADDRS:-} ]]; then
  scripts/ensure-redis.sh
  rport=6380
  while ! port_free "$rport"; do rport=$((rport + 1)); done
  redis-server --port "$rport" --bind 127.0.0.1 --dir "$PWD/$run_dir" \
    --appendonly yes --appendfsync everysec --save "" --daemonize no \
    --logfile "$PWD/$run_dir/redis.log" &
  pids+=($!)
  export HTQ_REDIS_URL="redis://127.0.0.1:$rport/0"
  for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
  echo "started redis-server on 127.0.0.1:$rport (data in $run_dir, AOF on)"
fi

# A development token, made once and kept in tmp/run.
token_file=$run_dir/token
[[ -s $token_file ]] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$token_file"
token=$(cat "$token_file")
export HTQ_API_TOKENS=${HTQ_API_TOKENS:-$token}
export HTQ_API_LEGACY_APP_KEY=${HTQ_API_LEGACY_APP_KEY:-demo_key}
export HTQ_API_LEGACY_APP_TOKEN=${HTQ_API_LEGACY_APP_TOKEN:-demo_token}
export HTQ_API_LISTEN=${HTQ_API_LISTEN:-127.0.0.1:5999}
export HTQ_LOG_FORMAT=${HTQ_LOG_FORMAT:-text}
api_port=${HTQ_API_LISTEN##*:}
if ! port_free "$api_port"; then
  echo "port $api_port is taken: set HTQ_API_LISTEN=127.0.0.1:<port>" >&2
  exit 1
fi

bin/htq-api >"$run_dir/api.log" 2>&1 & pids+=($!)
bin/htq-scheduler >"$run_dir/scheduler.log" 2>&1 & pids+=($!)
bin/htq-dispatcher >"$run_dir/dispatcher.log" 2>&1 & pids+=($!)
base="http://127.0.0.1:$api_port"
for _ in $(seq 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { echo "the API did not become ready; see $run_dir/api.log" >&2; exit 1; }

cat <<MSG

HTQ is running: API on $base (logs in $run_dir/*.log). Ctrl-C stops it.

Create a queue and push a URL (REST):
  curl -H 'Authorization: Bearer $token' -X PUT $base/v1/queues/demo -d '{}'
  curl -H 'Authorization: Bearer $token' $base/v1/queues/demo/tasks \\
       -d '{"url":"https://example.com/hook","method":"POST","body":{"order":42}}'
  curl -H 'Authorization: Bearer $token' $base/v1/tasks/<id>

The legacy API (what the PHP SDK sends):
  curl $base/api/addTask -F app_key=demo_key -F app_token=demo_token \\
       -F queue_name=demo -F url=https://example.com/hook -F method=get \\
       -F header='[]' -F data='[]' -F execute_time=0

MSG
wait -n "${pids[@]}"
echo "a process exited; see $run_dir/*.log" >&2
