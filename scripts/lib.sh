# shellcheck shell=bash
# Helpers shared by scripts/postfix.sh and scripts/mailpath.sh, the two
# private, throw-away mail servers for the end-to-end tests. Sourcing this
# file only defines functions. They expect the caller's globals PROG (the
# script's name, the prefix of every message), DIR (the instance directory,
# set by parse_args), MARKER and, for make_ca_and_server_cert, TLS.

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

# Guards the piecewise wipe in start: true when DIR holds files and lacks our
# marker, i.e. it may be a directory (DIR=/tmp, DIR=$HOME) we did not make.
dir_is_foreign() {
	[ -d "$DIR" ] && [ ! -f "$DIR/$MARKER" ] && [ -n "$(ls -A "$DIR")" ]
}

# Creates DIR with the marker, enterable by the daemons' users (mktemp -d
# makes 0700 directories they could not enter).
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
