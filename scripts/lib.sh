# shellcheck shell=bash
# Helpers shared by scripts/postfix.sh, scripts/mailpath.sh and
# scripts/domainpath.sh, the private, throw-away servers for the end-to-end
# tests, and by their check scripts. Sourcing this file only defines
# functions. They expect the caller's globals PROG (the script's name, the
# prefix of every message), DIR (the instance directory, set by parse_args
# or load_instance_env), MARKER and, where a function says so, TLS, RUN,
# DNS, NSD_CONF, MAILLOG, GENERATED and START_TIMEOUT, and the caller's
# functions stop_all and check_ports_free.

# One prefix on every error, so a failure names the script that hit it.
die() {
	echo "$PROG: $*" >&2
	exit 1
}

# `ACTION DIR` into action and DIR (the caller's usage on anything else).
# DIR is made absolute and plain: Postfix resolves relative paths against its
# queue directory, and DIR is pasted unquoted into config files and DIR/env.
parse_args() {
	[ $# -eq 2 ] || usage
	# shellcheck disable=SC2034 # read by the caller
	action=$1
	[ -n "$2" ] || usage
	DIR=$(realpath -m -- "$2")
	[[ $DIR =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "DIR must be a plain path (letters, digits, . _ / + -): $DIR"
}

# The paths in DIR that scripts/mailpath.sh and scripts/domainpath.sh, the
# instances of NSD and Postfix, lay out alike: TLS material, the daemons'
# pid files and output, the zones and NSD's config, DKIM keys, Postfix's
# instance and its config, the mail log.
# shellcheck disable=SC2034 # read by the callers
set_instance_paths() {
	TLS=$DIR/tls
	RUN=$DIR/run
	DNS=$DIR/dns
	NSD_CONF=$DNS/nsd.conf
	DKIM=$DIR/dkim
	PF=$DIR/postfix
	PF_CONF=$PF/etc
	MAILLOG=$DIR/maillog
}

# Guards the piecewise wipe in start: true when DIR holds files and lacks our
# marker, i.e. it may be a directory (DIR=/tmp, DIR=$HOME) we did not make.
dir_is_foreign() {
	[ -d "$DIR" ] && [ ! -f "$DIR/$MARKER" ] && [ -n "$(ls -A "$DIR")" ]
}

# Creates DIR with the marker, enterable by the daemons' users (mktemp -d
# makes 0700 directories they could not enter), and the directories in $@.
# shellcheck disable=SC2120 # postfix.sh passes directories
claim_instance_dir() {
	mkdir -p "$DIR" "$@"
	: >"$DIR/$MARKER"
	chmod 0755 "$DIR"
}

# --- processes ---------------------------------------------------------------

# A stopped daemon stays a zombie until init reaps it, and kill -0 succeeds
# on zombies; only a live process counts.
alive() {
	local state
	state=$(sed 's/.*) //' 2>/dev/null <"/proc/$1/stat" | cut -d' ' -f1 || true)
	[ -n "$state" ] && [ "$state" != Z ]
}

# Gives a process 10 s to exit, so a following start can bind its ports.
wait_gone() {
	local pid=$1 i
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	return 1
}

# Stops pids ($2...) with SIGTERM, all at once, then SIGKILL for any that
# ignore it; $1 is a printf format naming one of them (%s is its pid).
terminate() {
	local what=$1 pid
	shift
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		if ! wait_gone "$pid"; then
			# shellcheck disable=SC2059 # the format is the caller's
			echo "$PROG: $(printf "$what" "$pid") ignored SIGTERM, killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			# shellcheck disable=SC2059
			wait_gone "$pid" || die "could not stop $(printf "$what" "$pid")"
		fi
	done
}

# Processes whose executable's name matches glob $1 and that have $2 as one
# argument (every daemon here gets its config or script path on the command
# line). Found through /proc rather than pid files, so an instance whose DIR
# was deleted while it ran is still found, and neither another instance of
# the program nor an editor open on the file is touched.
pids_with_arg() {
	local f pid exe
	# -z: cmdline's arguments are NUL-separated, so -x matches one argument.
	for f in $(grep -lzxF -- "$2" /proc/[0-9]*/cmdline 2>/dev/null || true); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
		# shellcheck disable=SC2053 # $1 is a glob
		if [ -n "$exe" ] && [[ ${exe##*/} == $1 ]]; then
			echo "$pid"
		fi
	done
}

# Postfix master processes started with config directory $1. Found through
# MAIL_CONFIG in the process environment rather than the pid file, so an
# instance whose DIR was deleted while it ran is still found.
postfix_masters() {
	local pid env
	for pid in $(pgrep -x master 2>/dev/null || true); do
		env=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" || true)
		if grep -qxF "MAIL_CONFIG=$1" <<<"$env"; then
			echo "$pid"
		fi
	done
}

# Stops the Postfix with config directory $1: `postfix stop`, then waits
# for its master. The master re-execs without our arguments; it is found
# through MAIL_CONFIG in its environment. `postfix stop` costs a second even
# with nothing running, hence only when a master runs.
stop_postfix() {
	local masters
	masters=$(postfix_masters "$1")
	if [ -n "$masters" ] && [ -f "$1/main.cf" ]; then
		postfix -c "$1" stop >/dev/null 2>&1 || true
	fi
	# shellcheck disable=SC2086 # one pid per word
	terminate "postfix master (%s)" $masters
}

# --- ports -------------------------------------------------------------------

# True when something listens on TCP port $1 (any address). Asks the kernel
# rather than connecting: a probe connection would put a "lost connection"
# (or an SSL_accept error) into the logs tests read.
tcp_port_taken() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# The pid listening on TCP port $1, if any, for an error message that says
# who holds the port.
tcp_port_owner() {
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# True when something listens on $1 (tcp or udp) at address $2, port $3, or
# on the port at a wildcard address, which would keep us from binding. Asks
# the kernel rather than connecting, so that readiness checks leave no "lost
# connection" lines in the logs tests read.
listening() {
	local flag=-Hltn
	[ "$1" = udp ] && flag=-Hlun
	[ -n "$(ss "$flag" "( src $2 or src 0.0.0.0 or src [::] ) and sport = :$3" 2>/dev/null)" ]
}

# Polls "$@" until it succeeds, for at most START_TIMEOUT seconds; on
# timeout names $1 and shows the end of log $2 (none when empty).
wait_for() {
	local what=$1 log=$2 deadline=$((SECONDS + START_TIMEOUT))
	shift 2
	while ! "$@"; do
		if ((SECONDS >= deadline)); then
			echo "$PROG: $what not ready within ${START_TIMEOUT}s${log:+; end of $log:}" >&2
			if [ -n "$log" ]; then tail -n 30 "$log" >&2 || true; fi
			exit 1
		fi
		sleep 0.1
	done
}

# --- material ----------------------------------------------------------------

# A fresh CA (CN $1) and a server key and certificate it signs (CN $2,
# subjectAltName $3) in $TLS: ca.{key,crt}, server.{key,csr,ext,crt}.
make_ca_and_server_cert() {
	local ca_cn=$1 cn=$2 san=$3
	mkdir -p "$TLS"
	(
		cd "$TLS" || exit
		openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
		openssl req -x509 -new -key ca.key -sha256 -days 3650 -out ca.crt \
			-subj "/O=smtp_exporter tests/CN=$ca_cn" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
		openssl ecparam -name prime256v1 -genkey -noout -out server.key 2>/dev/null
		openssl req -new -key server.key -subj "/O=smtp_exporter tests/CN=$cn" -out server.csr 2>/dev/null
		cat >server.ext <<-EOF
			basicConstraints = critical,CA:FALSE
			keyUsage = critical,digitalSignature
			extendedKeyUsage = serverAuth
			subjectAltName = $san
		EOF
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-sha256 -days 365 -extfile server.ext -out server.crt 2>/dev/null
		# The daemons read keys as root before dropping privileges; nobody
		# else needs them.
		chmod 0600 ca.key server.key
		chmod 0644 ca.crt server.crt
	)
}

# The daemons drop privileges and use absolute paths: user $1 must pass
# `test $2 $3` (-r or -w), which fails when a parent of DIR is closed to it
# (a clone under a 0700 home directory).
check_user_access() {
	local verb=read
	if [ "$2" = -w ]; then verb="write"; fi
	runuser -u "$1" -- test "$2" "$3" ||
		die "the $1 user cannot $verb $3: every parent directory of $DIR needs o+x (try a DIR under /tmp)"
}

# Writes stdin to DIR/env through a temporary file, so a reader never sees
# half of it.
write_env_file() {
	cat >"$DIR/env.tmp"
	mv "$DIR/env.tmp" "$DIR/env"
}

# --- NSD configuration -------------------------------------------------------

# Writes $NSD_CONF for zones under $DNS (state, log and pid file in $DNS and
# $RUN): NSD listens on each address@port in $1 (space-separated) and serves,
# for each further pair of arguments, zone NAME from FILE.
write_nsd_conf() {
	local addr
	{
		echo "$GENERATED"
		echo "server:"
		for addr in $1; do
			echo "  ip-address: $addr"
		done
		cat <<-EOF
			  do-ip6: no
			  username: nsd
			  chroot: ""
			  zonesdir: "$DNS"
			  pidfile: "$RUN/nsd.pid"
			  database: ""
			  zonelistfile: "$DNS/zone.list"
			  xfrdfile: "$DNS/xfrd.state"
			  xfrdir: "$DNS"
			  logfile: "$DNS/nsd.log"
			  server-count: 1
			  hide-version: yes
			  verbosity: 1
			remote-control:
			  control-enable: no
		EOF
		shift
		while [ $# -ge 2 ]; do
			printf 'zone:\n  name: %s\n  zonefile: "%s"\n' "$1" "$2"
			shift 2
		done
	} >"$NSD_CONF"
	# NSD writes its transfer state here after dropping to its user.
	chown nsd:nsd "$DNS"
}

# --- Postfix configuration ---------------------------------------------------

# The start of main.cf: a private queue under $1, logging to $MAILLOG with
# syslog name $2, host name $3 in $DOMAIN, listening on 127.0.0.1 only.
postfix_main_cf_head() {
	cat <<-EOF
		compatibility_level = 3.6
		queue_directory = $1/queue
		data_directory = $1/data
		meta_directory = /etc/postfix
		maillog_file = $MAILLOG
		maillog_file_prefixes = $DIR
		syslog_name = $2

		myhostname = $3
		mydomain = $DOMAIN
		myorigin = \$mydomain
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
	EOF
}

# main.cf lines that turn off local delivery and relaying, so nothing reaches
# the host's mailboxes or leaves the machine.
postfix_no_local_delivery() {
	cat <<-'EOF'
		mydestination =
		local_recipient_maps =
		local_transport = error:local delivery is disabled
		alias_maps =
		alias_database =
		relay_domains =
	EOF
}

# main.cf lines for opportunistic STARTTLS on every smtpd with $TLS's server
# certificate, logged, and recorded in Received.
postfix_smtpd_tls() {
	cat <<-EOF
		smtpd_tls_security_level = may
		smtpd_tls_cert_file = $TLS/server.crt
		smtpd_tls_key_file = $TLS/server.key
		smtpd_tls_loglevel = 1
		smtpd_tls_received_header = yes
	EOF
}

# master.cf's internal services (chroot "n" everywhere: a jail would have to
# be populated inside the private queue directory). Lines given as arguments
# are services only the caller needs; they go after discard.
postfix_master_services() {
	local line
	cat <<-'EOF'
		pickup    unix  n       -       n       60      1       pickup
		cleanup   unix  n       -       n       -       0       cleanup
		qmgr      unix  n       -       n       300     1       qmgr
		tlsmgr    unix  -       -       n       1000?   1       tlsmgr
		rewrite   unix  -       -       n       -       -       trivial-rewrite
		bounce    unix  -       -       n       -       0       bounce
		defer     unix  -       -       n       -       0       bounce
		trace     unix  -       -       n       -       0       bounce
		verify    unix  -       -       n       -       1       verify
		flush     unix  n       -       n       1000?   0       flush
		proxymap  unix  -       -       n       -       -       proxymap
		proxywrite unix -       -       n       -       1       proxymap
		smtp      unix  -       -       n       -       -       smtp
		relay     unix  -       -       n       -       -       smtp
		showq     unix  n       -       n       -       -       showq
		error     unix  -       -       n       -       -       error
		retry     unix  -       -       n       -       -       error
		discard   unix  -       -       n       -       -       discard
	EOF
	for line in "$@"; do
		printf '%s\n' "$line"
	done
	cat <<-'EOF'
		lmtp      unix  -       -       n       -       -       lmtp
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
}

# --- actions -----------------------------------------------------------------

# Dies unless every command named in $@ is installed.
require_tools() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is not installed (run scripts/install-deps.sh)"
	done
}

# The first steps of `start`: stops what an earlier start left running (the
# caller's stop_all), checks that the ports are free (check_ports_free),
# removes the paths $@ (what an earlier start made in DIR) and DIR/env, and
# claims DIR with an empty $MAILLOG. From then on, a start that fails stops
# whatever it started.
reset_instance_dir() {
	stop_all
	check_ports_free
	# DIR gets wiped piecewise; the marker keeps a typo (DIR=/tmp,
	# DIR=$HOME) from doing that to a directory we did not make.
	if dir_is_foreign; then
		die "$DIR is not empty and was not created by this script; give a new or empty directory"
	fi
	# Only what the script creates is removed, never DIR itself: the caller
	# may hold on to it (mktemp -d).
	rm -rf "$@" "$DIR/env" "$DIR/env.tmp"
	# shellcheck disable=SC2119 # the caller makes its own directories
	claim_instance_dir
	: >"$MAILLOG"
	# shellcheck disable=SC2154 # rc is the trap's own
	trap 'rc=$?; if [ $rc -ne 0 ]; then stop_all; fi; exit $rc' EXIT
}

# Starts a daemon that puts itself in the background, with its standard
# streams away from ours (in $RUN/$1.out): a daemon holding the caller's
# stdout open (Dovecot keeps stderr) would hang any pipeline the caller runs
# start in.
daemon() {
	local name=$1 log=$RUN/$1.out
	shift
	if ! "$@" </dev/null >>"$log" 2>&1; then
		die "$name did not start: $(tail -n 5 "$log")"
	fi
}

# Starts the Postfix with config directory $1, through the command prefix in
# the remaining arguments if any; on failure shows the end of $MAILLOG.
start_postfix() {
	local conf=$1 out
	shift
	if ! out=$("$@" postfix -c "$conf" start 2>&1); then
		echo "$PROG: postfix start failed: $out" >&2
		tail -n 30 "$MAILLOG" >&2 || true
		exit 1
	fi
}

# The time since $1 (date +%s%N) in seconds with one decimal, e.g. "3.4s".
elapsed_since() {
	local ms=$((($(date +%s%N) - $1) / 1000000))
	printf '%d.%01ds' $((ms / 1000)) $((ms % 1000 / 100))
}

# `stop`: runs the caller's stop function $1, then drops DIR/env so nothing
# reads addresses of servers that are gone.
stop_instance_dir() {
	"$1"
	rm -f "$DIR/env"
	echo "$PROG: stopped ($DIR)"
}

# `status` when everything runs: says so and shows the env the tests read.
report_running() {
	echo "$PROG: running ($DIR)"
	[ -f "$DIR/env" ] && cat "$DIR/env"
	return 0
}

# `status` of an instance of several daemons; each argument is NAME=PIDS,
# PIDS empty when that daemon is down. Exit status 3 when any is.
report_daemons() {
	local arg missing=()
	for arg in "$@"; do
		[ -n "${arg#*=}" ] || missing+=("${arg%%=*}")
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		report_running
		return 0
	fi
	echo "$PROG: not running ($DIR): ${missing[*]} down"
	return 3
}

# Runs the action parse_args read: the caller's start and status, and for
# stop its stop function $1.
run_action() {
	case "$action" in
	start) start ;;
	stop) stop_instance_dir "$1" ;;
	status) status ;;
	*) usage ;;
	esac
}

# --- check scripts -----------------------------------------------------------

# For a check script: DIR from its one argument, and DIR/env, which
# `scripts/$1 start DIR` wrote, exported into the environment.
load_instance_env() {
	local starter=$1
	shift
	if [ $# -ne 1 ] || [ -z "$1" ]; then die "usage: scripts/$PROG DIR"; fi
	DIR=$(realpath -m -- "$1")
	[ -f "$DIR/env" ] || die "$DIR/env not found: run scripts/$starter start $DIR first"
	set -a
	# shellcheck disable=SC1091 # written by the start script
	. "$DIR/env"
	set +a
}

# Runs one check, "$@", under the heading $1 ("letter: what it shows"); the
# letters of those that fail are kept for finish_checks.
check() {
	local name=$1
	shift
	echo "[$name]"
	if ! "$@"; then
		failed_checks+=("${name%%:*}")
	fi
}

# After every check: a summary naming the logs in $@ when any failed, and
# the exit status.
finish_checks() {
	# :- because no check may have failed, leaving the array unset.
	if [ -n "${failed_checks[*]:-}" ]; then
		echo "$PROG: FAILED: ${failed_checks[*]}"
		echo "$PROG: logs: $*"
		exit 1
	fi
	echo "$PROG: all checks passed"
}
