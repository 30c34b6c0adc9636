#!/usr/bin/env bash
# Installs the system packages the end-to-end tests need (a real Postfix with
# Cyrus SASL and TLS, swaks for manual checks, Prometheus/promtool/Alertmanager
# for the examples, and the mail path of scripts/mailpath.sh: NSD, OpenDKIM,
# OpenDMARC, policyd-spf, Dovecot with LMTP and Sieve; and the mail domains of
# scripts/domainpath.sh: NSD, Unbound, ldnsutils, curl; and the release
# checks: buildah for make image, systemd-analyze for make systemd-verify).
# Safe to run repeatedly: it does nothing when every command
# is already present, so `make test-e2e` can call it unconditionally.
#
# Usage: scripts/install-deps.sh [--lint]
#   --lint  also pre-build staticcheck into the Go build cache, so that the
#           first `make lint` does not pay for it (optional: `make lint` fetches
#           it itself through `go run`).
set -euo pipefail

STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"

want_lint=0
for arg in "$@"; do
	case "$arg" in
	--lint) want_lint=1 ;;
	-h | --help)
		awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"
		exit 0
		;;
	*)
		echo "install-deps.sh: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

# Checking for the libraries too, not just the commands: swaks installs
# without Net::SSLeay (only a Recommends) and then silently cannot STARTTLS, and
# saslpasswd2 without libsasl2-modules creates users no mechanism can read.
# Debian names the Alertmanager binary prometheus-alertmanager. ss and pgrep
# are used by scripts/postfix.sh and are on most, not all, minimal images.
# dovecot-sieve and dovecot-lmtpd bring no command of their own: the package
# check below catches them.
commands=(postfix swaks saslpasswd2 openssl prometheus promtool prometheus-alertmanager ss pgrep runuser python3
	nsd dovecot sievec opendkim opendkim-genkey opendmarc policyd-spf unshare mount
	unbound unbound-checkconf ldns-keygen ldns-signzone drill curl setsid
	buildah systemd-analyze chroot)
packages=(
	postfix
	swaks
	libnet-ssleay-perl
	libio-socket-ssl-perl
	libauthen-sasl-perl
	libsasl2-modules
	sasl2-bin
	openssl
	prometheus
	prometheus-alertmanager
	iproute2
	procps
	util-linux
	python3
	mount
	# scripts/mailpath.sh. None is started by installing it where, as in CI,
	# there is no init system; on a machine with systemd the packages start
	# their system services (NSD on port 53, Dovecot on 143/993), which
	# mailpath.sh does not use but which may hold ports it wants.
	nsd
	opendkim
	opendkim-tools
	opendmarc
	postfix-policyd-spf-python
	dovecot-core
	dovecot-imapd
	dovecot-lmtpd
	dovecot-sieve
	# scripts/domainpath.sh: Unbound as the validating resolver, ldnsutils
	# for DNSSEC keys, signing and drill, curl for the MTA-STS check. The
	# unbound package starts nothing without an init system and needs no
	# network (no root key fetch: the trust anchor is the test zone's).
	unbound
	ldnsutils
	curl
	# make image: buildah builds Dockerfile.scratch offline on vfs storage
	# (no daemon, no runtime: the checks chroot into the mounted image), with
	# the CA bundle copied into the image. make systemd-verify: Debian's
	# systemd package brings systemd-analyze and installs without systemd
	# running as PID 1.
	buildah
	ca-certificates
	systemd
)

missing=()
for c in "${commands[@]}"; do
	# postfix and saslpasswd2 live in /usr/sbin, which a non-login root shell
	# in CI may not have on PATH.
	if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$c" ]; then
		missing+=("$c")
	fi
done
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("pkg:$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all system dependencies present"
else
	echo "install-deps: missing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: must run as root to install packages" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Without this the postfix postinst asks (or, non-interactively, picks
	# "Internet Site" and writes a live /etc/postfix config); we run only
	# private instances, so the system one stays unconfigured.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	start=$SECONDS
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${packages[@]}"
	echo "install-deps: packages installed in $((SECONDS - start))s"
fi

if [ "$want_lint" -eq 1 ]; then
	if ! command -v go >/dev/null 2>&1; then
		echo "install-deps: go not on PATH, cannot prepare staticcheck" >&2
		exit 1
	fi
	# The Makefile runs staticcheck through `go run pkg@version`, which caches
	# the built binary; running it once here fills that cache.
	go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" -version
	echo "install-deps: staticcheck ${STATICCHECK_VERSION} ready"
fi
