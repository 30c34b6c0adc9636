#!/usr/bin/env bash
# A private, throw-away Postfix for the end-to-end tests.
#
# Usage: scripts/postfix.sh start|stop|status DIR
#
# Everything lives under DIR (config, queue, TLS material, SASL db, Maildir,
# log); /etc/postfix is never read or written, and nothing listens beyond
# 127.0.0.1. `start` rebuilds DIR from scratch every time (new CA, new
# password, empty Maildir), so tests never see state from an earlier run.
# After `start`, DIR/env holds KEY=VALUE lines the tests read.
#
# Listeners (ports overridable through the environment):
#   SMTP_EXPORTER_POSTFIX_PORT            (10025) SMTP, STARTTLS offered, AUTH after TLS
#   SMTP_EXPORTER_POSTFIX_SMTPS_PORT      (10465) implicit TLS (wrapper mode), AUTH
#   SMTP_EXPORTER_POSTFIX_SUBMISSION_PORT (10587) TLS required (530 5.7.0 before
#                                                 STARTTLS), AUTH required for MAIL
#                                                 (530 5.7.0 Authentication required)
#   SMTP_EXPORTER_POSTFIX_EXPIRED_PORT    (10026) like the SMTP port but STARTTLS
#                                                 presents an expired certificate
#
# Recipients in example.test: anything lands in the one Maildir, except
#   reject@example.test  550 5.1.1   defer@example.test  450 4.2.1
#   full@example.test    552 5.2.2
# Mail to any other domain is accepted only after AUTH and then discarded.
set -euo pipefail

# Postfix's commands live in /usr/sbin, which is not on every root PATH (CI).
export PATH="$PATH:/usr/sbin:/sbin"

readonly DOMAIN=example.test
readonly HOSTNAME_FQDN=mail.example.test
readonly SASL_USER=monitor
readonly START_TIMEOUT=20
readonly MARKER=.smtp_exporter-postfix

die() {
	echo "postfix.sh: $*" >&2
	exit 1
}

usage() {
	sed -n '2,4p' "$0" >&2
	exit 2
}

[ $# -eq 2 ] || usage
action=$1
[ -n "$2" ] || usage
# Absolute, because Postfix resolves relative paths against its queue
# directory, and the path ends up in the env file other processes read.
DIR=$(realpath -m -- "$2")
# The path is pasted unquoted into main.cf, master.cf and DIR/env.
[[ $DIR =~ ^/[A-Za-z0-9._/+-]*$ ]] || die "DIR must be a plain path (letters, digits, . _ / + -): $DIR"

PORT=${SMTP_EXPORTER_POSTFIX_PORT:-10025}
SMTPS_PORT=${SMTP_EXPORTER_POSTFIX_SMTPS_PORT:-10465}
SUBMISSION_PORT=${SMTP_EXPORTER_POSTFIX_SUBMISSION_PORT:-10587}
EXPIRED_PORT=${SMTP_EXPORTER_POSTFIX_EXPIRED_PORT:-10026}
PORTS=("$PORT" "$SMTPS_PORT" "$SUBMISSION_PORT" "$EXPIRED_PORT")

CONF=$DIR/etc
TLS=$DIR/tls
MAILBOX_BASE=$DIR/mail
MAILDIR=$MAILBOX_BASE/inbox
MAILLOG=$DIR/maillog

postfix_cmd() {
	postfix -c "$CONF" "$@"
}

instance_running() {
	[ -f "$CONF/main.cf" ] && postfix_cmd status >/dev/null 2>&1
}

# Master processes started with our config directory. Found through
# MAIL_CONFIG in the process environment rather than the pid file, so an
# instance whose DIR was deleted (rm -rf .e2e while running) is still found.
our_masters() {
	local pid env
	for pid in $(pgrep -x master 2>/dev/null || true); do
		env=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" || true)
		if grep -qxF "MAIL_CONFIG=$CONF" <<<"$env"; then
			echo "$pid"
		fi
	done
}

# Asks the kernel rather than connecting: a probe connection would put a
# "lost connection" (or an SSL_accept error on the TLS port) into the maillog
# that tests read.
port_open() {
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# A stopped master stays a zombie until init reaps it, and kill -0 succeeds
# on zombies; only a live process counts.
alive() {
	local state
	state=$(sed 's/.*) //' 2>/dev/null <"/proc/$1/stat" | cut -d' ' -f1 || true)
	[ -n "$state" ] && [ "$state" != Z ]
}

wait_gone() {
	local pid=$1 i
	for ((i = 0; i < 100; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	return 1
}

stop_instance() {
	local pid
	if instance_running; then
		postfix_cmd stop >/dev/null 2>&1 || true
	fi
	# `postfix stop` only signals master; wait for it (and its listeners) to
	# be gone so a following start can bind the same ports.
	for pid in $(our_masters); do
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid"; then
			echo "postfix.sh: master $pid ignored SIGTERM, killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" || die "could not stop master $pid"
		fi
	done
}

check_ports_free() {
	local p pid cfg
	for p in "${PORTS[@]}"; do
		if port_open "$p"; then
			pid=$(ss -Hltnp "sport = :$p" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)
			cfg=""
			if [ -n "$pid" ]; then
				cfg=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | sed -n 's/^MAIL_CONFIG=//p' || true)
			fi
			# shellcheck disable=SC2016 # the single quotes are literal text
			die "port $p is already in use${pid:+ by pid $pid}${cfg:+ (Postfix with config $cfg: stop it with 'scripts/postfix.sh stop ${cfg%/etc}')}"
		fi
	done
}

make_certs() {
	local now_minus_400 now_minus_30
	mkdir -p "$TLS"
	(
		cd "$TLS"
		openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
		openssl req -x509 -new -key ca.key -sha256 -days 3650 -out ca.crt \
			-subj "/O=smtp_exporter tests/CN=smtp_exporter test CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

		openssl ecparam -name prime256v1 -genkey -noout -out server.key 2>/dev/null
		openssl req -new -key server.key -subj "/O=smtp_exporter tests/CN=$HOSTNAME_FQDN" -out server.csr 2>/dev/null
		cat >server.ext <<-EOF
			basicConstraints = critical,CA:FALSE
			keyUsage = critical,digitalSignature
			extendedKeyUsage = serverAuth
			subjectAltName = DNS:$HOSTNAME_FQDN,DNS:localhost,IP:127.0.0.1
		EOF
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-sha256 -days 365 -extfile server.ext -out server.crt 2>/dev/null

		# `openssl x509` cannot backdate; `openssl ca` can set both ends of
		# the validity window, which avoids needing faketime.
		mkdir -p ca-db
		: >ca-db/index.txt
		echo 1000 >ca-db/serial
		cat >ca.cnf <<-EOF
			[ ca ]
			default_ca = test_ca
			[ test_ca ]
			dir = $TLS/ca-db
			database = \$dir/index.txt
			serial = \$dir/serial
			new_certs_dir = \$dir
			certificate = $TLS/ca.crt
			private_key = $TLS/ca.key
			default_md = sha256
			policy = anything
			copy_extensions = none
			unique_subject = no
			[ anything ]
			organizationName = optional
			commonName = supplied
		EOF
		now_minus_400=$(date -u -d '-400 days' +%Y%m%d%H%M%SZ)
		now_minus_30=$(date -u -d '-30 days' +%Y%m%d%H%M%SZ)
		openssl ca -batch -notext -config ca.cnf -in server.csr -out expired.crt \
			-startdate "$now_minus_400" -enddate "$now_minus_30" \
			-extfile server.ext 2>/dev/null
		# Postfix reads keys as root before dropping privileges; nobody else
		# needs them.
		chmod 0600 ca.key server.key
		chmod 0644 ca.crt server.crt expired.crt
	)
}

make_sasldb() {
	local password
	# Hex keeps the password free of characters that need quoting anywhere.
	password=$(openssl rand -hex 16)
	# No trailing newline: a consumer that reads the file verbatim still gets
	# the right password.
	(umask 077 && printf '%s' "$password" >"$DIR/password")
	chmod 0600 "$DIR/password"
	printf '%s' "$password" | saslpasswd2 -p -c -f "$DIR/sasldb2" -u "$DOMAIN" "$SASL_USER"
	# smtpd opens the db at AUTH time, after dropping to the postfix user.
	chown root:postfix "$DIR/sasldb2"
	chmod 0640 "$DIR/sasldb2"
	mkdir -p "$CONF/sasl"
	cat >"$CONF/sasl/smtpd.conf" <<-EOF
		pwcheck_method: auxprop
		auxprop_plugin: sasldb
		sasldb_path: $DIR/sasldb2
		mech_list: PLAIN LOGIN
	EOF
}

write_main_cf() {
	local nobody_uid nobody_gid
	nobody_uid=$(id -u nobody)
	nobody_gid=$(id -g nobody)
	cat >"$CONF/main.cf" <<-EOF
		# Generated by scripts/postfix.sh; rebuilt on every start.
		compatibility_level = 3.6
		queue_directory = $DIR/queue
		data_directory = $DIR/data
		meta_directory = /etc/postfix
		maillog_file = $MAILLOG
		maillog_file_prefixes = $DIR
		syslog_name = smtp_exporter-postfix

		myhostname = $HOSTNAME_FQDN
		mydomain = $DOMAIN
		myorigin = \$mydomain
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		smtpd_banner = \$myhostname ESMTP smtp_exporter test instance
		biff = no

		# Nothing is delivered locally and nothing leaves the machine: the
		# test domain goes to one Maildir, every other domain is discarded.
		mydestination =
		local_recipient_maps =
		local_transport = error:local delivery is disabled
		alias_maps =
		alias_database =
		relay_domains =
		default_transport = discard:smtp_exporter test instance
		relay_transport = discard:smtp_exporter test instance
		virtual_mailbox_domains = $DOMAIN
		virtual_mailbox_base = $MAILBOX_BASE
		virtual_mailbox_maps = static:inbox/
		virtual_uid_maps = static:$nobody_uid
		virtual_gid_maps = static:$nobody_gid

		# Nobody on loopback is trusted: relaying needs AUTH, so tests see the
		# real 554 5.7.1 for unauthenticated relay.
		mynetworks = 127.0.0.1/32
		smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
		smtpd_recipient_restrictions = check_recipient_access texthash:$CONF/recipient_access
		# The submission port answers MAIL without AUTH the way many
		# providers do (530 at MAIL, hence smtpd_delay_reject=no there), so
		# tests can see a real auth_required reply.
		submission_sender_restrictions = permit_sasl_authenticated, check_sender_access static:{530 5.7.0 Authentication required}

		smtpd_sasl_auth_enable = yes
		smtpd_sasl_type = cyrus
		smtpd_sasl_path = smtpd
		cyrus_sasl_config_path = $CONF/sasl
		smtpd_sasl_security_options = noanonymous
		smtpd_tls_auth_only = yes

		smtpd_tls_security_level = may
		smtpd_tls_cert_file = $TLS/server.crt
		smtpd_tls_key_file = $TLS/server.key
		smtpd_tls_loglevel = 1
		smtpd_tls_received_header = yes
		smtp_tls_security_level = none
	EOF

	cat >"$CONF/recipient_access" <<-EOF
		reject@$DOMAIN 550 5.1.1 User unknown in virtual mailbox table
		defer@$DOMAIN 450 4.2.1 Mailbox temporarily unavailable
		full@$DOMAIN 552 5.2.2 Mailbox full
	EOF
}

write_master_cf() {
	# chroot is "n" everywhere: a jail would have to be populated inside the
	# private queue directory, which buys nothing for a loopback test server.
	cat >"$CONF/master.cf" <<-EOF
		# Generated by scripts/postfix.sh; rebuilt on every start.
		127.0.0.1:$PORT inet n - n - - smtpd
		  -o syslog_name=smtp_exporter-postfix/smtp
		127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
		  -o syslog_name=smtp_exporter-postfix/smtps
		  -o smtpd_tls_wrappermode=yes
		  -o smtpd_tls_security_level=encrypt
		127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
		  -o syslog_name=smtp_exporter-postfix/submission
		  -o smtpd_tls_security_level=encrypt
		  -o smtpd_sender_restrictions=\$submission_sender_restrictions
		  -o smtpd_delay_reject=no
		127.0.0.1:$EXPIRED_PORT inet n - n - - smtpd
		  -o syslog_name=smtp_exporter-postfix/expired
		  -o smtpd_tls_cert_file=$TLS/expired.crt
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
		local     unix  -       n       n       -       -       local
		virtual   unix  -       n       n       -       -       virtual
		lmtp      unix  -       -       n       -       -       lmtp
		anvil     unix  -       -       n       -       1       anvil
		scache    unix  -       -       n       -       1       scache
		postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
}

check_reachable() {
	# The daemons run as postfix and deliver as nobody, using absolute paths:
	# every parent of DIR must be searchable by them (a clone under a 0700
	# home directory is not).
	runuser -u postfix -- test -r "$DIR/sasldb2" ||
		die "the postfix user cannot read $DIR/sasldb2: every parent directory of $DIR needs o+x (try a DIR under /tmp)"
	runuser -u nobody -- test -w "$MAILDIR/new" ||
		die "the nobody user cannot write $MAILDIR/new: every parent directory of $DIR needs o+x (try a DIR under /tmp)"
}

write_env() {
	cat >"$DIR/env.tmp" <<-EOF
		SMTP_EXPORTER_POSTFIX_ADDR=127.0.0.1:$PORT
		SMTP_EXPORTER_POSTFIX_SMTPS_ADDR=127.0.0.1:$SMTPS_PORT
		SMTP_EXPORTER_POSTFIX_SUBMISSION_ADDR=127.0.0.1:$SUBMISSION_PORT
		SMTP_EXPORTER_POSTFIX_EXPIRED_ADDR=127.0.0.1:$EXPIRED_PORT
		SMTP_EXPORTER_POSTFIX_CA_FILE=$TLS/ca.crt
		SMTP_EXPORTER_POSTFIX_SERVER_NAME=$HOSTNAME_FQDN
		SMTP_EXPORTER_POSTFIX_USER=$SASL_USER@$DOMAIN
		SMTP_EXPORTER_POSTFIX_PASSWORD_FILE=$DIR/password
		SMTP_EXPORTER_POSTFIX_DOMAIN=$DOMAIN
		SMTP_EXPORTER_POSTFIX_MAILDIR=$MAILDIR
		SMTP_EXPORTER_POSTFIX_MAILLOG=$MAILLOG
	EOF
	mv "$DIR/env.tmp" "$DIR/env"
}

wait_ready() {
	local deadline=$((SECONDS + START_TIMEOUT)) p banner
	for p in "${PORTS[@]}"; do
		until port_open "$p"; do
			if ((SECONDS >= deadline)); then
				echo "postfix.sh: port $p did not open within ${START_TIMEOUT}s; end of $MAILLOG:" >&2
				tail -n 30 "$MAILLOG" >&2 2>/dev/null || true
				stop_instance
				exit 1
			fi
			sleep 0.2
		done
	done
	# An open port only proves master listens; a 220 proves smtpd can run
	# with this config (it reads the TLS and SASL setup on start).
	banner=$(timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; head -n1 <&3; printf 'QUIT\r\n' >&3" 2>/dev/null || true)
	if [[ $banner != 220* ]]; then
		echo "postfix.sh: no 220 banner on port $PORT (got: ${banner:-nothing}); end of $MAILLOG:" >&2
		tail -n 30 "$MAILLOG" >&2 2>/dev/null || true
		stop_instance
		exit 1
	fi
}

start() {
	local t0=$SECONDS
	command -v postfix >/dev/null || die "postfix is not installed (run scripts/install-deps.sh)"
	command -v saslpasswd2 >/dev/null || die "saslpasswd2 is not installed (run scripts/install-deps.sh)"

	stop_instance
	check_ports_free

	# DIR gets wiped piecewise and chmod'ed below; the marker keeps a typo
	# (DIR=/tmp, DIR=$HOME) from doing that to a directory we did not make.
	if [ -d "$DIR" ] && [ ! -f "$DIR/$MARKER" ] && [ -n "$(ls -A "$DIR")" ] &&
		! grep -qs '^# Generated by scripts/postfix.sh' "$CONF/main.cf"; then
		die "$DIR is not empty and was not created by this script; give a new or empty directory"
	fi
	# Only the pieces this script creates are removed, never DIR itself: DIR
	# may be a directory the caller made (mktemp -d) and holds on to.
	rm -rf "$CONF" "$DIR/queue" "$DIR/data" "$TLS" "$MAILBOX_BASE" \
		"$DIR/sasldb2" "$DIR/password" "$DIR/env" "$DIR/env.tmp" "$MAILLOG"
	mkdir -p "$DIR"
	: >"$DIR/$MARKER"
	# mktemp -d makes 0700 directories, which the postfix and nobody users
	# could not enter.
	chmod 0755 "$DIR"
	mkdir -p "$CONF" "$DIR/queue" "$DIR/data"
	chown postfix "$DIR/data"
	mkdir -p "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp"
	chown -R nobody:nogroup "$MAILBOX_BASE"
	: >"$MAILLOG"

	make_certs
	make_sasldb
	write_main_cf
	write_master_cf
	check_reachable

	# `start` runs Postfix's own integrity check, which also creates the
	# queue tree with the ownership Postfix insists on (a separate
	# `postfix check` would only double the ~3 s it costs).
	local out
	if ! out=$(postfix_cmd start 2>&1); then
		echo "postfix.sh: postfix start failed: $out" >&2
		echo "postfix.sh: end of $MAILLOG:" >&2
		tail -n 30 "$MAILLOG" >&2 || true
		exit 1
	fi
	wait_ready
	write_env
	echo "postfix.sh: started in $((SECONDS - t0))s: SMTP 127.0.0.1:$PORT, SMTPS 127.0.0.1:$SMTPS_PORT, submission 127.0.0.1:$SUBMISSION_PORT, expired-cert 127.0.0.1:$EXPIRED_PORT; env in $DIR/env"
}

stop() {
	stop_instance
	rm -f "$DIR/env"
	echo "postfix.sh: stopped ($DIR)"
}

status() {
	if instance_running; then
		echo "postfix.sh: running ($DIR)"
		[ -f "$DIR/env" ] && cat "$DIR/env"
		return 0
	fi
	echo "postfix.sh: not running ($DIR)"
	return 3
}

case "$action" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
