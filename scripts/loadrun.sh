#!/usr/bin/env bash
# The load run of issue 11: the real exporter binary, built from this tree,
# against cmd/smtp-loadserver with N STARTTLS targets, and what it costs.
#
# Usage: scripts/loadrun.sh [TARGETS [normal|slow]]        (default: 1000 normal)
#
#   normal  the server greets at once
#   slow    it sends "220-" at once and the rest of the greeting 6 s later,
#           as Postfix's postscreen does (postscreen_greet_wait)
#
# Every target has its own name and the same address (the load server on
# 127.0.30.1 and a free port); the module is STARTTLS with the certificate
# verified against the server's throw-away CA (ca_file), then QUIT. The
# script writes the config, starts the server and the exporter, waits
# LOADRUN_WARMUP seconds (every target has run once after one interval, the
# first runs being spread over it), then measures over LOADRUN_WINDOW
# seconds, scraping /metrics every LOADRUN_SCRAPE_EVERY as Prometheus would,
# and scrapes it once more at the end. It prints a table, and the same figures as
# `loadrun_*{targets=..,banner=..} value` lines.
#
#   exporter CPU   utime+stime of the exporter's process (/proc/PID/stat)
#                  over the window, in % of one core, the window's scrapes
#                  included, and without them (the probes alone); the server
#                  and this script's helpers are other processes
#   RSS            VmHWM (peak since start) and VmRSS at the end
#   lag            smtp_exporter_scheduler_lag_seconds across targets
#                  (each target's last run) at the end: p50, p99, max
#   probes/s       probe_smtp_runs_total between a scrape just before the
#                  window and the one after it
#   scrapes        the window's scrapes (text format, gzipped as Go's and
#                  Prometheus's clients ask): median and max of the
#                  exporter's CPU while each ran, less the probes' CPU at
#                  the window's rate (clock ticks: ±10 ms)
#   scrape         the final /metrics scrape, the same way: wall time,
#                  bytes, samples, CPU
#
# Environment:
#   LOADRUN_WARMUP=65       seconds before the window
#   LOADRUN_WINDOW=120      seconds measured
#   LOADRUN_INTERVAL=60s    every target's interval
#   LOADRUN_SCRAPE_EVERY=15s  the window's scrapes (whole seconds; 0s: none)
#   LOADRUN_TIMEOUT=15s     the module's timeout (at most the interval)
#   LOADRUN_DELAY=6s        the slow banner's wait
#   LOADRUN_HOST=127.0.30.1 loopback address of the server and the exporter
#   LOADRUN_FLAGS=          extra exporter flags, e.g. --probe.concurrency=256
#   LOADRUN_EXPORTER=       a built exporter binary to use instead of building
#   LOADRUN_PROBES=0        when >0, first compare the CPU of that many /probe
#                           requests (a second exporter, one idle target) with
#                           a bare Go client doing the same dialog
#   LOADRUN_BARE=30         seconds of a bare Go client after the window, at the
#                           window's probe rate (dialogs spread out as the
#                           scheduler spreads probes, each in its own
#                           goroutine): the yardstick for the scheduled
#                           path's CPU per probe (0: skip)
#   LOADRUN_KEEP=           a directory to keep the config, logs and scrapes in
#   GO=go
#
# With the defaults one run takes about 3.5 minutes plus the build. Needs
# bash, Go and /proc (Linux), nothing else.
set -euo pipefail

readonly PROG=loadrun.sh
die() {
	echo "$PROG: $*" >&2
	exit 1
}

TARGETS=${1:-1000}
BANNER=${2:-normal}
[[ $TARGETS =~ ^[1-9][0-9]*$ ]] || die "TARGETS must be a positive number: $TARGETS"
case $BANNER in
normal) DELAY=0s ;;
slow) DELAY=${LOADRUN_DELAY:-6s} ;;
*) die "banner must be normal or slow: $BANNER" ;;
esac
WARMUP=${LOADRUN_WARMUP:-65}
WINDOW=${LOADRUN_WINDOW:-120}
INTERVAL=${LOADRUN_INTERVAL:-60s}
TIMEOUT=${LOADRUN_TIMEOUT:-15s}
HOST=${LOADRUN_HOST:-127.0.30.1}
PROBES=${LOADRUN_PROBES:-0}
BARE=${LOADRUN_BARE:-30}
SCRAPE_EVERY=${LOADRUN_SCRAPE_EVERY:-15s}
SCRAPE_EVERY=${SCRAPE_EVERY%s}
GO=${GO:-go}
[[ $WARMUP =~ ^[0-9]+$ && $WINDOW =~ ^[1-9][0-9]*$ && $PROBES =~ ^[0-9]+$ && $SCRAPE_EVERY =~ ^[0-9]+$ && $BARE =~ ^[0-9]+$ ]] ||
	die "LOADRUN_WARMUP, LOADRUN_WINDOW, LOADRUN_PROBES, LOADRUN_SCRAPE_EVERY and LOADRUN_BARE are whole numbers (of seconds)"
[ -r /proc/self/stat ] || die "needs /proc (Linux)"
[ "${BASH_VERSINFO[0]}" -ge 5 ] || die "needs bash 5 (EPOCHREALTIME)"
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
WORK=$(mktemp -d /tmp/smtp_exporter-loadrun.XXXXXX)
SERVER_PID='' EXPORTER_PID=''
cleanup() {
	# Only the processes this script started, by their ids.
	for pid in $EXPORTER_PID $SERVER_PID; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $EXPORTER_PID $SERVER_PID; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${LOADRUN_KEEP:-}" ]; then
		mkdir -p "$LOADRUN_KEEP" && cp -r "$WORK"/. "$LOADRUN_KEEP"/
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- arithmetic without awk or bc: integers, fixed point -------------------

# now_us: wall clock in microseconds.
now_us() { echo "${EPOCHREALTIME/./}"; }

# ratio A B D: A/B rounded to D decimals.
ratio() {
	local a=$1 b=$2 d=$3 scale=1 q
	for ((i = 0; i < d; i++)); do scale=$((scale * 10)); done
	[ "$b" -ne 0 ] || {
		echo NaN
		return
	}
	q=$(((a * scale * 2 + b) / (2 * b)))
	if [ "$d" -eq 0 ]; then
		echo "$q"
	else
		printf '%d.%0*d\n' $((q / scale)) "$d" $((q % scale))
	fi
}

# cpu_ticks PID: user+system CPU of PID in clock ticks.
cpu_ticks() {
	local stat rest f
	stat=$(<"/proc/$1/stat")
	rest=${stat##*) } # the name may hold spaces; fields 3.. follow ") "
	read -ra f <<<"$rest"
	echo $((f[11] + f[12]))
}

# status_kb PID FIELD: a kB figure of /proc/PID/status (VmRSS, VmHWM).
status_kb() {
	local k v _
	while read -r k v _; do
		if [ "$k" = "$2:" ]; then
			echo "$v"
			return
		fi
	done <"/proc/$1/status"
	echo 0
}

loadavg() {
	local a b c _
	read -r a b c _ </proc/loadavg
	echo "$a $b $c"
}

# scrape FILE: summarise one /metrics scrape into FILE ("key value" lines).
scrape() {
	"$WORK/smtp-loadserver" scrape -url "http://$WEB/metrics" >"$1"
}

# get FILE KEY: a value from a "key value" file.
get() {
	local k v
	while read -r k v; do
		if [ "$k" = "$2" ]; then
			echo "$v"
			return
		fi
	done <"$1"
	die "no $2 in $1"
}

# wait_for CMD...: retry CMD for up to 30 s, or until it exits with 255.
wait_for() {
	local rc
	for _ in $(seq 300); do
		rc=0
		"$@" 2>/dev/null || rc=$?
		case $rc in
		0) return 0 ;;
		255) return 1 ;;
		esac
		sleep 0.1
	done
	return 1
}

# --- build and start --------------------------------------------------------

echo "$PROG: building into $WORK"
if [ -n "${LOADRUN_EXPORTER:-}" ]; then
	cp "$LOADRUN_EXPORTER" "$WORK/smtp_exporter"
else
	"$GO" build -o "$WORK/smtp_exporter" ./cmd/smtp_exporter
fi
"$GO" build -o "$WORK/smtp-loadserver" ./cmd/smtp-loadserver

"$WORK/smtp-loadserver" serve -listen "$HOST:0" -addr-file "$WORK/server.addr" \
	-ca-file "$WORK/ca.pem" -banner-delay "$DELAY" 2>"$WORK/server.log" &
SERVER_PID=$!
wait_for test -s "$WORK/server.addr" || die "the load server did not start: $(cat "$WORK/server.log")"
SERVER=$(<"$WORK/server.addr")
# A CA file is not written a second before it is used: one that changed
# within the last 2 s is read again at every probe (probes/filecache.go), so
# a fresh one would make the first seconds' probes rebuild their TLS config
# and verify every chain, as no steady exporter does.
touch -d '-1 minute' "$WORK/ca.pem"

# write_config FILE COUNT INTERVAL
write_config() {
	{
		cat <<EOF
modules:
  loadrun:
    timeout: $TIMEOUT
    smtp:
      tls: starttls
      ehlo: probe.loadrun.test
      tls_config:
        ca_file: $WORK/ca.pem
        server_name: mx.loadrun.test
targets:
EOF
		for ((i = 0; i < $2; i++)); do
			echo "  - {name: t$i, address: \"$SERVER\", module: loadrun, interval: $3}"
		done
	} >"$1"
}

# start_exporter CONFIG LOG [FLAGS...]: sets WEB and EXPORTER_PID.
start_exporter() {
	local config=$1 log=$2
	shift 2
	WEB=$HOST:$("$WORK/smtp-loadserver" freeport -host "$HOST")
	# shellcheck disable=SC2086 # LOADRUN_FLAGS is a list of flags
	"$WORK/smtp_exporter" --config.file="$config" --web.listen-address="$WEB" \
		--log.level=warn "$@" ${LOADRUN_FLAGS:-} >"$log" 2>&1 &
	EXPORTER_PID=$!
	wait_for exporter_ready "$WORK/ready" || die "the exporter did not start: $(tail -n 20 "$log")"
}

# exporter_ready FILE: true once /metrics answers; gives up at once if the
# exporter exited (a bad config) instead of waiting out wait_for.
exporter_ready() {
	kill -0 "$EXPORTER_PID" 2>/dev/null || return 255
	scrape "$1"
}

stop_exporter() {
	kill "$EXPORTER_PID" 2>/dev/null || true
	wait "$EXPORTER_PID" 2>/dev/null || true
	EXPORTER_PID=
}

# --- optional: CPU per /probe against a bare client -------------------------

if [ "$PROBES" -gt 0 ]; then
	echo "$PROG: $PROBES /probe requests, then $PROBES bare dialogs"
	write_config "$WORK/probe.yml" 1 24h
	start_exporter "$WORK/probe.yml" "$WORK/probe-exporter.log"
	# A few unmeasured requests first: connections, TLS setup, code paths.
	"$WORK/smtp-loadserver" get -url "http://$WEB/probe?target=t0" -n 20 >/dev/null
	c0=$(cpu_ticks "$EXPORTER_PID")
	"$WORK/smtp-loadserver" get -url "http://$WEB/probe?target=t0" -n "$PROBES" >"$WORK/probe.out"
	c1=$(cpu_ticks "$EXPORTER_PID")
	stop_exporter
	probe_us=$(((c1 - c0) * 1000000 / CLK_TCK / PROBES))
	"$WORK/smtp-loadserver" bare -addr "$SERVER" -ca-file "$WORK/ca.pem" -n 20 >/dev/null
	"$WORK/smtp-loadserver" bare -addr "$SERVER" -ca-file "$WORK/ca.pem" -n "$PROBES" >"$WORK/bare.out"
	bare_us=$(($(get "$WORK/bare.out" cpu_microseconds) / PROBES))
fi

# --- the load run -------------------------------------------------------------

write_config "$WORK/loadrun.yml" "$TARGETS" "$INTERVAL"
echo "$PROG: $TARGETS targets, banner $BANNER, interval $INTERVAL; server $SERVER"
start_exporter "$WORK/loadrun.yml" "$WORK/exporter.log"
echo "$PROG: exporter pid $EXPORTER_PID on $WEB; warm-up ${WARMUP}s, then a ${WINDOW}s window"
sleep "$WARMUP"

tA=$(now_us)
scrape "$WORK/scrape-start"
load_start=$(loadavg)
# The scrape's garbage is collected in the background; let that pass so
# the window holds the probes' steady state.
sleep 5
t0=$(now_us)
c0=$(cpu_ticks "$EXPORTER_PID")
s0=$(cpu_ticks "$SERVER_PID")
rss_max=0
end=$((SECONDS + WINDOW))
next_scrape=$((SECONDS + SCRAPE_EVERY))
scrape_ticks=() scrape_us=() # each window scrape's exporter CPU and wall time
while [ "$SECONDS" -lt "$end" ]; do
	sleep 1
	rss=$(status_kb "$EXPORTER_PID" VmRSS)
	[ "$rss" -le "$rss_max" ] || rss_max=$rss
	if [ "$SCRAPE_EVERY" -gt 0 ] && [ "$SECONDS" -ge "$next_scrape" ] && [ "$SECONDS" -lt "$end" ]; then
		ka=$(cpu_ticks "$EXPORTER_PID")
		ta=$(now_us)
		scrape "$WORK/scrape-window"
		kb=$(cpu_ticks "$EXPORTER_PID")
		tb=$(now_us)
		scrape_ticks+=($((kb - ka)))
		scrape_us+=($((tb - ta)))
		next_scrape=$((next_scrape + SCRAPE_EVERY))
	fi
done
c1=$(cpu_ticks "$EXPORTER_PID")
s1=$(cpu_ticks "$SERVER_PID")
t1=$(now_us)
load_end=$(loadavg)
rss_end=$(status_kb "$EXPORTER_PID" VmRSS)

sc0=$(cpu_ticks "$EXPORTER_PID")
tB=$(now_us)
scrape "$WORK/scrape-end"
sc1=$(cpu_ticks "$EXPORTER_PID")
tC=$(now_us)
rss_hwm=$(status_kb "$EXPORTER_PID" VmHWM)
stop_exporter

# The scheduled path's yardstick: a bare client at the window's pace. Its
# CPU per dialog is well above a back-to-back loop's (caches go cold and
# the runtime parks and wakes between dialogs), as the exporter's is.
window_runs=$(($(get "$WORK/scrape-end" runs_total) - $(get "$WORK/scrape-start" runs_total)))
paced_us='' paced_every_us=''
if [ "$BARE" -gt 0 ] && [ "$window_runs" -gt 0 ]; then
	paced_every_us=$(((tB - tA) / window_runs))
	paced_n=$((BARE * 1000000 / paced_every_us))
	[ "$paced_n" -ge 1 ] || paced_n=1
	echo "$PROG: a bare client, $paced_n dialogs every ${paced_every_us}µs (the window's pace)"
	"$WORK/smtp-loadserver" bare -addr "$SERVER" -ca-file "$WORK/ca.pem" -n "$paced_n" -every "${paced_every_us}us" >"$WORK/paced.out"
	paced_us=$(($(get "$WORK/paced.out" cpu_microseconds) / paced_n))
fi

# --- report -------------------------------------------------------------------

window_us=$((t1 - t0))
cpu_pct=$(ratio $(((c1 - c0) * 100000000 / CLK_TCK)) "$window_us" 1)
# The probes' CPU: the window's less its scrapes', over the time no scrape
# ran. Each scrape's CPU is then less the probes' over its wall time.
w_ticks=0 w_us=0
for i in "${!scrape_ticks[@]}"; do
	w_ticks=$((w_ticks + scrape_ticks[i]))
	w_us=$((w_us + scrape_us[i]))
done
probe_cpu_us=$(((c1 - c0 - w_ticks) * 1000000 / CLK_TCK)) # over window_us - w_us
probe_pct=$(ratio $((probe_cpu_us * 100)) $((window_us - w_us)) 1)
nets=()
for i in "${!scrape_ticks[@]}"; do
	net=$((scrape_ticks[i] * 1000000 / CLK_TCK - probe_cpu_us * scrape_us[i] / (window_us - w_us)))
	nets+=($((net < 0 ? 0 : net)))
done
scrapes_line="none (LOADRUN_SCRAPE_EVERY=0)"
scrape_p50_us='' scrape_max_us=''
if [ "${#nets[@]}" -gt 0 ]; then
	mapfile -t nets < <(printf '%s\n' "${nets[@]}" | sort -n)
	scrape_p50_us=${nets[$(((${#nets[@]} - 1) / 2))]}
	scrape_max_us=${nets[-1]}
	scrapes_line="${#nets[@]} every ${SCRAPE_EVERY}s: exporter CPU median $(ratio "$scrape_p50_us" 1000000 3) s, max $(ratio "$scrape_max_us" 1000000 3) s"
fi
server_pct=$(ratio $(((s1 - s0) * 100000000 / CLK_TCK)) "$window_us" 1)
runs=$window_runs
fails=$(($(get "$WORK/scrape-end" failures_total) - $(get "$WORK/scrape-start" failures_total)))
# The runs counted span from the first scrape's start to the second's.
probes_s=$(ratio $((runs * 1000000)) $((tB - tA)) 1)
interval_s=${INTERVAL%s}
expected_s=NaN
[[ $interval_s =~ ^[0-9]+$ ]] && expected_s=$(ratio "$TARGETS" "$interval_s" 1)
# The probes go on during the scrape: their CPU, at the window's rate, is
# taken out of what the exporter spent while the scrape ran.
scrape_raw_us=$(((sc1 - sc0) * 1000000 / CLK_TCK))
scrape_net_us=$((scrape_raw_us - probe_cpu_us * (tC - tB) / (window_us - w_us)))
[ "$scrape_net_us" -ge 0 ] || scrape_net_us=0
scrape_cpu=$(ratio "$scrape_net_us" 1000000 2)
scrape_cpu_raw=$(ratio "$scrape_raw_us" 1000000 2)
scrape_mib=$(ratio "$(get "$WORK/scrape-end" bytes)" 1048576 1)
mib() { ratio "$1" 1024 1; }

cat <<EOF

Load run: $TARGETS targets, banner $BANNER, interval $INTERVAL, window ${WINDOW}s after ${WARMUP}s
Machine: $(nproc) CPUs, load average $load_start at the start, $load_end at the end

| measure | value |
|---|---|
| exporter CPU | $cpu_pct % of one core with the window's scrapes, $probe_pct % without them |
| RSS | $(mib "$rss_hwm") MiB peak (VmHWM), $(mib "$rss_max") MiB highest in window, $(mib "$rss_end") MiB at the end |
| scheduling lag | p50 $(get "$WORK/scrape-end" lag_p50_seconds) s, p99 $(get "$WORK/scrape-end" lag_p99_seconds) s, max $(get "$WORK/scrape-end" lag_max_seconds) s over $(get "$WORK/scrape-end" lag_targets) targets |
| probes completed | $probes_s /s (schedule: $expected_s /s), $fails failed in the window |
| targets succeeding | $(get "$WORK/scrape-end" success_targets) of $TARGETS (last run) |
| the window's /metrics scrapes | $scrapes_line |
| one /metrics scrape at the end | $(get "$WORK/scrape-end" wall_seconds) s wall, $scrape_cpu s exporter CPU ($scrape_cpu_raw s with the probes meanwhile), $scrape_mib MiB, $(get "$WORK/scrape-end" samples) samples |
| load server CPU (not counted above) | $server_pct % of one core |
EOF
# The probes' CPU over the time no scrape ran, per probe at the rate of
# the runs counted.
sched_us=''
if [ "$runs" -gt 0 ]; then
	sched_us=$((probe_cpu_us * (tB - tA) / (runs * (window_us - w_us))))
fi
if [ -n "$paced_us" ] && [ -n "$sched_us" ]; then
	echo "| CPU per scheduled probe (scrapes apart) | $sched_us µs, bare client at the same pace $paced_us µs: $(ratio "$sched_us" "$paced_us" 2)× |"
fi
if [ "$PROBES" -gt 0 ]; then
	echo "| CPU per /probe | $probe_us µs, bare client $bare_us µs: $(ratio "$probe_us" "$bare_us" 2)× |"
fi

l="targets=\"$TARGETS\",banner=\"$BANNER\""
echo
echo "loadrun_exporter_cpu_percent{$l} $cpu_pct"
echo "loadrun_exporter_probes_cpu_percent{$l} $probe_pct"
if [ -n "$scrape_p50_us" ]; then
	echo "loadrun_window_scrape_cpu_seconds_p50{$l} $(ratio "$scrape_p50_us" 1000000 3)"
	echo "loadrun_window_scrape_cpu_seconds_max{$l} $(ratio "$scrape_max_us" 1000000 3)"
fi
echo "loadrun_exporter_rss_peak_bytes{$l} $((rss_hwm * 1024))"
echo "loadrun_exporter_rss_end_bytes{$l} $((rss_end * 1024))"
echo "loadrun_scheduler_lag_p50_seconds{$l} $(get "$WORK/scrape-end" lag_p50_seconds)"
echo "loadrun_scheduler_lag_p99_seconds{$l} $(get "$WORK/scrape-end" lag_p99_seconds)"
echo "loadrun_scheduler_lag_max_seconds{$l} $(get "$WORK/scrape-end" lag_max_seconds)"
echo "loadrun_probes_per_second{$l} $probes_s"
echo "loadrun_probe_failures{$l} $fails"
echo "loadrun_scrape_wall_seconds{$l} $(get "$WORK/scrape-end" wall_seconds)"
echo "loadrun_scrape_cpu_seconds{$l} $scrape_cpu"
echo "loadrun_scrape_bytes{$l} $(get "$WORK/scrape-end" bytes)"
echo "loadrun_scrape_samples{$l} $(get "$WORK/scrape-end" samples)"
echo "loadrun_server_cpu_percent{$l} $server_pct"
echo "loadrun_load_average_1m{$l} ${load_end%% *}"
if [ -n "$paced_us" ] && [ -n "$sched_us" ]; then
	echo "loadrun_scheduled_probe_cpu_seconds{$l} $(ratio "$sched_us" 1000000 6)"
	echo "loadrun_paced_bare_client_cpu_seconds{$l} $(ratio "$paced_us" 1000000 6)"
fi
if [ "$PROBES" -gt 0 ]; then
	echo "loadrun_probe_endpoint_cpu_seconds_per_probe{$l} $(ratio "$probe_us" 1000000 6)"
	echo "loadrun_bare_client_cpu_seconds_per_probe{$l} $(ratio "$bare_us" 1000000 6)"
fi
