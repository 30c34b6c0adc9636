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
readonly PROG=postfix.sh

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '2,4p' "$0" >&2
	exit 2
}

parse_args "$@"

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

stop_instance() {
	if instance_running; then
		postfix_cmd stop >/dev/null 2>&1 || true
	fi
	# `postfix stop` only signals master; wait for it (and its listeners) to
	# be gone so a following start can bind the same ports. Found through
	# MAIL_CONFIG, so an instance whose DIR was deleted (rm -rf .e2e while
	# running) is still stopped.
	# shellcheck disable=SC2046 # one pid per word
	terminate "master %s" $(postfix_masters "$CONF")
}

check_ports_free() {
	local p pid cfg
	for p in "${PORTS[@]}"; do
		if tcp_port_taken "$p"; then
			pid=$(tcp_port_owner "$p")
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
	make_ca_and_server_cert "smtp_exporter test CA" "$HOSTNAME_FQDN" \
		"DNS:$HOSTNAME_FQDN,DNS:localhost,IP:127.0.0.1"
	(
		cd "$TLS"
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
		chmod 0644 expired.crt
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
	{
		echo '# Generated by scripts/postfix.sh; rebuilt on every start.'
		postfix_main_cf_head "$DIR" smtp_exporter-postfix "$HOSTNAME_FQDN"
		cat <<-EOF
		smtpd_banner = \$myhostname ESMTP smtp_exporter test instance
		biff = no

		# Nothing is delivered locally and nothing leaves the machine: the
		# test domain goes to one Maildir, every other domain is discarded.
		EOF
		postfix_no_local_delivery
		cat <<-EOF
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

		EOF
		postfix_smtpd_tls
		echo 'smtp_tls_security_level = none'
	} >"$CONF/main.cf"

	cat >"$CONF/recipient_access" <<-EOF
		reject@$DOMAIN 550 5.1.1 User unknown in virtual mailbox table
		defer@$DOMAIN 450 4.2.1 Mailbox temporarily unavailable
		full@$DOMAIN 552 5.2.2 Mailbox full
	EOF
}

write_master_cf() {
	# chroot is "n" everywhere: a jail would have to be populated inside the
	# private queue directory, which buys nothing for a loopback test server.
	{
		cat <<-EOF
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
		EOF
		postfix_master_services \
			'local     unix  -       n       n       -       -       local' \
			'virtual   unix  -       n       n       -       -       virtual'
	} >"$CONF/master.cf"
}

check_reachable() {
	# The daemons run as postfix and deliver as nobody.
	check_user_access postfix -r "$DIR/sasldb2"
	check_user_access nobody -w "$MAILDIR/new"
}

write_env() {
	write_env_file <<-EOF
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
}

wait_ready() {
	local deadline=$((SECONDS + START_TIMEOUT)) p banner
	for p in "${PORTS[@]}"; do
		until tcp_port_taken "$p"; do
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
	local t0
	t0=$(date +%s%N)
	# Postfix's daemons start as root and drop to the postfix and nobody
	# users; as anyone else the first chown below fails, saying less.
	[ "$(id -u)" -eq 0 ] || die "start needs root (Postfix's daemons switch to the postfix and nobody users): run it with sudo"
	command -v postfix >/dev/null || die "postfix is not installed (run scripts/install-deps.sh)"
	command -v saslpasswd2 >/dev/null || die "saslpasswd2 is not installed (run scripts/install-deps.sh)"

	stop_instance
	check_ports_free

	# DIR gets wiped piecewise and chmod'ed below; the marker keeps a typo
	# (DIR=/tmp, DIR=$HOME) from doing that to a directory we did not make.
	if dir_is_foreign &&
		! grep -qs '^# Generated by scripts/postfix.sh' "$CONF/main.cf"; then
		die "$DIR is not empty and was not created by this script; give a new or empty directory"
	fi
	# Only the pieces this script creates are removed, never DIR itself: DIR
	# may be a directory the caller made (mktemp -d) and holds on to.
	rm -rf "$CONF" "$DIR/queue" "$DIR/data" "$TLS" "$MAILBOX_BASE" \
		"$DIR/sasldb2" "$DIR/password" "$DIR/env" "$DIR/env.tmp" "$MAILLOG"
	claim_instance_dir "$CONF" "$DIR/queue" "$DIR/data"
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
	echo "postfix.sh: started in $(elapsed_since "$t0"): SMTP 127.0.0.1:$PORT, SMTPS 127.0.0.1:$SMTPS_PORT, submission 127.0.0.1:$SUBMISSION_PORT, expired-cert 127.0.0.1:$EXPIRED_PORT; env in $DIR/env"
}

status() {
	if instance_running; then
		report_running
		return 0
	fi
	echo "postfix.sh: not running ($DIR)"
	return 3
}

run_action stop_instance
