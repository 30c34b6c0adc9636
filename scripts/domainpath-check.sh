#!/usr/bin/env bash
# Hand checks of the mail domains scripts/domainpath.sh serves, with the
# tools an operator would use: drill (ldnsutils) against the validating
# resolver, openssl s_client against the MX hosts, curl for MTA-STS.
#
# Usage: scripts/domainpath-check.sh DIR    (DIR as given to `domainpath.sh start`)
#
#   a  validated answers carry AD (UDP and TCP); names outside the test
#      zones are refused, not looked up on the network
#   b  bogus.posture.test: SERVFAIL; with CD set, the altered records
#   c  good's SPF, DMARC, DKIM key and TLS-RPT records, validated
#   d  every MX address's PTR names the host that greets there, and that
#      name's address is the one connected to
#   e  TLSA 3 1 1 matches the keys mx1 and mx2 present (SPKI hashed here,
#      and OpenSSL's own DANE check), and the certificates verify with the CA
#   f  rotated's MX presents a key its TLSA does not name
#   g  MTA-STS: the policies fetched over HTTPS with the test CA (and not
#      without it); good's covers its MX hosts, badsts's does not cover its
#   h  nullmx: MX 0 .
#   i  deadmx: the primary greets, the secondary refuses connections
#   j  spflimit's SPF needs more than 10 DNS lookups, good's at most 10
#   k  the MX listeners offer STARTTLS and refuse mail
#
# Every check runs; the exit status is non-zero if any failed.

# The SMTP_EXPORTER_DOMAINPATH_* variables come from DIR/env.
# shellcheck disable=SC2153
set -euo pipefail

readonly PROG=domainpath-check.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

load_instance_env domainpath.sh "$@"
require_tools drill openssl curl timeout

RES_IP=${SMTP_EXPORTER_DOMAINPATH_DNS_SERVER%:*}
RES_PORT=${SMTP_EXPORTER_DOMAINPATH_DNS_SERVER##*:}
CA=$SMTP_EXPORTER_DOMAINPATH_CA_FILE
MX_PORT=$SMTP_EXPORTER_DOMAINPATH_MX_PORT
STS_IP=${SMTP_EXPORTER_DOMAINPATH_MTA_STS_ADDR%:*}
STS_PORT=${SMTP_EXPORTER_DOMAINPATH_MTA_STS_ADDR##*:}
GOOD=$SMTP_EXPORTER_DOMAINPATH_GOOD_DOMAIN
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- DNS ---------------------------------------------------------------------

# q [drill options] NAME TYPE: asks the resolver, with DO set; the whole
# answer lands in $OUT.
q() {
	local n=$#
	OUT=$(drill -D -p "$RES_PORT" "${@:1:n-2}" "${@:n-1:1}" @"$RES_IP" "${@:n}" 2>&1) || true
}

rcode() {
	sed -n 's/.*rcode: \([A-Z]*\),.*/\1/p' <<<"$OUT"
}

has_ad() {
	grep -q '^;; flags:.* ad ' <<<"$OUT"
}

# The data of the answer section's records of type $1, one per line, TXT
# character-strings joined.
answers() {
	awk -v t="$1" '/^;; ANSWER SECTION:/ { a = 1; next } /^$/ { a = 0 }
		a && $4 == t { $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print }' <<<"$OUT" |
		if [ "$1" = TXT ]; then sed 's/" "//g; s/^"//; s/"$//'; else cat; fi
}

# want_validated NAME TYPE: NOERROR with AD, or says why not.
want_validated() {
	q "$1" "$2"
	if [ "$(rcode)" != NOERROR ] || ! has_ad; then
		echo "  FAIL: $1 $2: rcode $(rcode), flags: $(grep '^;; flags:' <<<"$OUT")"
		return 1
	fi
}

# The one validated answer of type $2 for $1 (first line), or failure.
lookup() {
	want_validated "$1" "$2" >&2 || return 1
	answers "$2" | head -n1
}

# --- SMTP and TLS ------------------------------------------------------------

# host:port for address $1 (brackets for IPv6).
hostport() {
	case $1 in
	*:*) echo "[$1]:$MX_PORT" ;;
	*) echo "$1:$MX_PORT" ;;
	esac
}

# An SMTP dialog with address $1: EHLO, MAIL FROM, QUIT (pipelined); prints
# the server's replies.
smtp_dialog() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 10 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "EHLO check.test\r\nMAIL FROM:<check@check.test>\r\nQUIT\r\n" >&3
		tr -d "\r" <&3' "$1" "$MX_PORT"
}

# The SHA-256 of the SubjectPublicKeyInfo of the certificate that host $2 at
# address $1 presents after STARTTLS, verified with the test CA.
presented_spki() {
	openssl s_client -starttls smtp -connect "$(hostport "$1")" -servername "$2" \
		-CAfile "$CA" -verify_hostname "$2" -verify_return_error </dev/null 2>/dev/null |
		openssl x509 -pubkey -noout 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null |
		sha256sum | cut -d' ' -f1
}

# OpenSSL's DANE check of host $2 at $1 against TLSA data $3: its verdict.
dane_verify() {
	openssl s_client -starttls smtp -connect "$(hostport "$1")" -servername "$2" \
		-dane_tlsa_domain "$2" -dane_tlsa_rrdata "$3" -verify_return_error </dev/null 2>&1 |
		grep -E '^(Verification|Verification error|DANE TLSA)' || true
}

# --- checks ------------------------------------------------------------------

check_ad() {
	local mx
	want_validated "$GOOD" MX || return 1
	mx=$(answers MX | sort | tr '\n' ' ')
	echo "  $GOOD MX (AD): $mx"
	[ "$mx" = "10 $SMTP_EXPORTER_DOMAINPATH_MX1_HOST. 20 $SMTP_EXPORTER_DOMAINPATH_MX2_HOST. " ] ||
		{ echo "  FAIL: unexpected MX set"; return 1; }
	q -t "$GOOD" MX
	has_ad || { echo "  FAIL: no AD over TCP"; return 1; }
	echo "  over TCP too"
	q example.com A
	[ "$(rcode)" = REFUSED ] || { echo "  FAIL: example.com: rcode $(rcode), want REFUSED"; return 1; }
	echo "  example.com: REFUSED"
}

check_bogus() {
	local b=$SMTP_EXPORTER_DOMAINPATH_BOGUS_DOMAIN
	q "$b" MX
	[ "$(rcode)" = SERVFAIL ] || { echo "  FAIL: $b MX: rcode $(rcode), want SERVFAIL"; return 1; }
	echo "  $b MX: SERVFAIL"
	q -o CD "$b" MX
	if [ "$(rcode)" != NOERROR ] || [ -z "$(answers MX)" ] || has_ad; then
		echo "  FAIL: $b MX with CD: rcode $(rcode), answer '$(answers MX)'"
		return 1
	fi
	echo "  with CD: $(answers MX) (no AD)"
}

check_records() {
	local spf dmarc dkim tlsrpt
	spf=$(lookup "$GOOD" TXT) && dmarc=$(lookup "_dmarc.$GOOD" TXT) &&
		dkim=$(lookup "$SMTP_EXPORTER_DOMAINPATH_DKIM_SELECTOR._domainkey.$GOOD" TXT) &&
		tlsrpt=$(lookup "_smtp._tls.$GOOD" TXT) || return 1
	echo "  SPF: $spf"
	echo "  DMARC: $dmarc"
	echo "  DKIM: ${dkim:0:40}... (${#dkim} bytes)"
	echo "  TLS-RPT: $tlsrpt"
	{ [[ $spf == "v=spf1 "* ]] && [[ $dmarc == "v=DMARC1; p=reject; rua=mailto:"* ]] &&
		[[ $dkim =~ ^v=DKIM1\;\ k=rsa\;\ p=[A-Za-z0-9+/=]{300,}$ ]] && [[ $tlsrpt == "v=TLSRPTv1; rua=mailto:"* ]]; } ||
		{ echo "  FAIL: a record is not what good.posture.test publishes"; return 1; }
}

# A PTR record whose name greets at the address and resolves back to it.
check_ptr_one() {
	local ip=$1 type=$2 name banner fwd
	q -x "$ip" PTR
	name=$(answers PTR | head -n1)
	name=${name%.}
	banner=$(smtp_dialog "$ip" | head -n1)
	fwd=$(lookup "$name" "$type") || return 1
	echo "  $ip: PTR $name, $type $fwd, greets '$banner'"
	{ [ -n "$name" ] && [[ $banner == "220 $name "* ]] && [ "$fwd" = "$ip" ]; } ||
		{ echo "  FAIL: PTR, greeting and address disagree"; return 1; }
}

check_ptr() {
	local addr ok=0
	for addr in "$SMTP_EXPORTER_DOMAINPATH_MX1_ADDR" "$SMTP_EXPORTER_DOMAINPATH_MX2_ADDR" \
		"$SMTP_EXPORTER_DOMAINPATH_ROTATED_MX_ADDR"; do
		check_ptr_one "${addr%:*}" A || ok=1
	done
	if [ -n "$SMTP_EXPORTER_DOMAINPATH_MX1_ADDR6" ]; then
		addr=${SMTP_EXPORTER_DOMAINPATH_MX1_ADDR6%:*}
		check_ptr_one "$(tr -d '[]' <<<"$addr")" AAAA || ok=1
	else
		echo "  no IPv6 MX (the host has no ::1, or SMTP_EXPORTER_DOMAINPATH_IPV6 is 0)"
	fi
	return $ok
}

# TLSA at _25._tcp of host $1 (at address $2) against the key it presents;
# $3 is "match" or "mismatch".
check_tlsa_one() {
	local host=$1 ip=$2 want=$3 tlsa spki dane
	tlsa=$(lookup "_25._tcp.$host" TLSA) || return 1
	spki=$(presented_spki "$ip" "$host")
	dane=$(dane_verify "$ip" "$host" "$tlsa")
	echo "  $host ($ip): TLSA $tlsa"
	echo "    presented SPKI sha256 $spki"
	echo "    openssl: $(tr '\n' ';' <<<"$dane")"
	if [ "$spki" = "$(sha256sum </dev/null | cut -d' ' -f1)" ]; then
		echo "  FAIL: no certificate, or it does not verify with the test CA"
		return 1
	fi
	case $want in
	match)
		{ [ "$tlsa" = "3 1 1 $spki" ] && grep -q 'matched EE certificate' <<<"$dane"; } ||
			{ echo "  FAIL: TLSA does not match the presented key"; return 1; }
		;;
	mismatch)
		{ [[ $tlsa == "3 1 1 "* ]] && [ "$tlsa" != "3 1 1 $spki" ] &&
			grep -q 'no matching DANE TLSA records' <<<"$dane"; } ||
			{ echo "  FAIL: TLSA matches the presented key"; return 1; }
		;;
	esac
}

check_tlsa() {
	local ok=0
	check_tlsa_one "$SMTP_EXPORTER_DOMAINPATH_MX1_HOST" "${SMTP_EXPORTER_DOMAINPATH_MX1_ADDR%:*}" match || ok=1
	check_tlsa_one "$SMTP_EXPORTER_DOMAINPATH_MX2_HOST" "${SMTP_EXPORTER_DOMAINPATH_MX2_ADDR%:*}" match || ok=1
	if [ -n "$SMTP_EXPORTER_DOMAINPATH_MX1_ADDR6" ]; then
		check_tlsa_one "$SMTP_EXPORTER_DOMAINPATH_MX1_HOST" ::1 match || ok=1
	fi
	return $ok
}

check_rotated() {
	local mx
	mx=$(lookup "$SMTP_EXPORTER_DOMAINPATH_ROTATED_DOMAIN" MX) || return 1
	[ "$mx" = "10 $SMTP_EXPORTER_DOMAINPATH_ROTATED_MX_HOST." ] || { echo "  FAIL: MX $mx"; return 1; }
	check_tlsa_one "$SMTP_EXPORTER_DOMAINPATH_ROTATED_MX_HOST" "${SMTP_EXPORTER_DOMAINPATH_ROTATED_MX_ADDR%:*}" mismatch
}

# True when MX host $1 matches one of the policy's mx: patterns in $2 (a
# leading "*." stands for exactly one label, RFC 8461 section 4.1).
sts_covers() {
	local host=$1 pat
	while read -r pat; do
		if [ "$host" = "$pat" ]; then return 0; fi
		if [[ $pat == "*."* ]] && [[ $host == *."${pat#*.}" ]] && [[ ${host%."${pat#*.}"} != *.* ]]; then
			return 0
		fi
	done < <(sed -n 's/^mx: *//p' <<<"$2")
	return 1
}

# Domain $1's MTA-STS policy; $2 is "covers" or "misses": whether its mx:
# patterns cover every MX host.
check_sts_one() {
	local d=$1 want=$2 txt ip policy mx host ok=0
	txt=$(lookup "_mta-sts.$d" TXT) || return 1
	ip=$(lookup "mta-sts.$d" A) || return 1
	policy=$(curl -sS --fail --max-time 10 --cacert "$CA" --resolve "mta-sts.$d:$STS_PORT:$ip" \
		"https://mta-sts.$d:$STS_PORT/.well-known/mta-sts.txt" 2>"$WORK/curl.err" | tr -d '\r') ||
		{ echo "  FAIL: $d: policy fetch failed: $(cat "$WORK/curl.err")"; return 1; }
	mx=$(lookup "$d" MX >/dev/null && answers MX | awk '{ sub(/\.$/, "", $2); print $2 }')
	echo "  $d: $txt; policy at $ip: $(tr '\n' ' ' <<<"$policy")"
	{ [[ $txt == "v=STSv1; id="* ]] && grep -qx 'version: STSv1' <<<"$policy" &&
		grep -qx 'mode: enforce' <<<"$policy"; } || { echo "  FAIL: $d: not an enforce policy"; return 1; }
	for host in $mx; do
		if sts_covers "$host" "$policy"; then
			[ "$want" = covers ] || { echo "  FAIL: $d: policy covers MX $host"; ok=1; }
		else
			[ "$want" = misses ] || { echo "  FAIL: $d: policy does not cover MX $host"; ok=1; }
		fi
	done
	return $ok
}

check_sts() {
	local ok=0 d rc
	check_sts_one "$GOOD" covers || ok=1
	for d in "$SMTP_EXPORTER_DOMAINPATH_ROTATED_DOMAIN" "$SMTP_EXPORTER_DOMAINPATH_DEADMX_DOMAIN" \
		"$SMTP_EXPORTER_DOMAINPATH_SPFLIMIT_DOMAIN"; do
		check_sts_one "$d" covers || ok=1
	done
	check_sts_one "$SMTP_EXPORTER_DOMAINPATH_BADSTS_DOMAIN" misses || ok=1
	# Without the test CA the certificate is not trusted.
	rc=0
	curl -sS --max-time 10 --resolve "mta-sts.$GOOD:$STS_PORT:$STS_IP" \
		"https://mta-sts.$GOOD:$STS_PORT/.well-known/mta-sts.txt" >/dev/null 2>&1 || rc=$?
	echo "  without the test CA: curl exit $rc"
	[ "$rc" = 60 ] || { echo "  FAIL: want curl exit 60 (certificate not trusted)"; ok=1; }
	return $ok
}

check_nullmx() {
	local mx
	want_validated "$SMTP_EXPORTER_DOMAINPATH_NULLMX_DOMAIN" MX || return 1
	mx=$(answers MX)
	echo "  $SMTP_EXPORTER_DOMAINPATH_NULLMX_DOMAIN MX (AD): $mx"
	[ "$mx" = "0 ." ] || { echo "  FAIL: want exactly MX 0 ."; return 1; }
}

check_deadmx() {
	local mx dead ip banner err
	want_validated "$SMTP_EXPORTER_DOMAINPATH_DEADMX_DOMAIN" MX || return 1
	mx=$(answers MX | sort | tr '\n' ' ')
	echo "  MX: $mx"
	[ "$mx" = "10 $SMTP_EXPORTER_DOMAINPATH_MX1_HOST. 20 $SMTP_EXPORTER_DOMAINPATH_DEAD_MX_HOST. " ] ||
		{ echo "  FAIL: unexpected MX set"; return 1; }
	ip=$(lookup "$SMTP_EXPORTER_DOMAINPATH_MX1_HOST" A) || return 1
	banner=$(smtp_dialog "$ip" | head -n1)
	echo "  primary $ip: $banner"
	[[ $banner == 220* ]] || { echo "  FAIL: the primary does not greet"; return 1; }
	dead=$(lookup "$SMTP_EXPORTER_DOMAINPATH_DEAD_MX_HOST" A) || return 1
	# shellcheck disable=SC2016 # expanded by the inner bash
	err=$(timeout 10 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$dead" "$MX_PORT" 2>&1) &&
		{ echo "  FAIL: $dead:$MX_PORT accepted a connection"; return 1; }
	echo "  secondary $dead: ${err##*: }"
	grep -q 'Connection refused' <<<"$err" || { echo "  FAIL: want connection refused"; return 1; }
}

# The DNS lookups SPF evaluation of domain $1 needs (RFC 7208 section 4.6.4:
# include, a, mx, ptr, exists, redirect), following includes and redirects.
spf_lookups() {
	local d=$1 depth=${2:-0} rec term n=0 sub
	((depth <= 20)) || { echo 999; return; }
	q "$d" TXT
	rec=$(answers TXT | grep '^v=spf1 ' | head -n1)
	for term in $rec; do
		term=${term#[+?~-]}
		case $term in
		include:* | redirect=*)
			sub=$(spf_lookups "${term#*[:=]}" $((depth + 1)))
			n=$((n + 1 + sub))
			;;
		a | a:* | a/* | mx | mx:* | mx/* | ptr | ptr:* | exists:*) n=$((n + 1)) ;;
		esac
	done
	echo "$n"
}

check_spf() {
	local good limit
	good=$(spf_lookups "$GOOD")
	limit=$(spf_lookups "$SMTP_EXPORTER_DOMAINPATH_SPFLIMIT_DOMAIN")
	echo "  DNS lookups: $GOOD $good, $SMTP_EXPORTER_DOMAINPATH_SPFLIMIT_DOMAIN $limit"
	((good >= 1 && good <= 10 && limit > 10)) || { echo "  FAIL: want good within 10, spflimit over"; return 1; }
}

check_listeners() {
	local addr out ok=0
	for addr in "$SMTP_EXPORTER_DOMAINPATH_MX1_ADDR" "$SMTP_EXPORTER_DOMAINPATH_MX2_ADDR" \
		"$SMTP_EXPORTER_DOMAINPATH_ROTATED_MX_ADDR" ${SMTP_EXPORTER_DOMAINPATH_MX1_ADDR6:+"$SMTP_EXPORTER_DOMAINPATH_MX1_ADDR6"}; do
		addr=${addr%:*}
		out=$(smtp_dialog "$(tr -d '[]' <<<"$addr")" || true)
		echo "  $addr: $(grep -c '^250-STARTTLS' <<<"$out") STARTTLS; MAIL FROM: $(grep '^5' <<<"$out" | head -n1)"
		{ grep -q '^250-STARTTLS' <<<"$out" && grep -q '^554 ' <<<"$out"; } ||
			{ echo "  FAIL: want STARTTLS offered and MAIL FROM refused"; ok=1; }
	done
	return $ok
}

check "a: AD on validated answers" check_ad
check "b: bogus name SERVFAIL, answered with CD" check_bogus
check "c: SPF, DMARC, DKIM, TLS-RPT records" check_records
check "d: PTRs match greeting names" check_ptr
check "e: TLSA matches the presented keys" check_tlsa
check "f: rotated key does not match TLSA" check_rotated
check "g: MTA-STS policies over HTTPS" check_sts
check "h: null MX" check_nullmx
check "i: dead secondary MX refuses connections" check_deadmx
check "j: SPF lookup limit" check_spf
check "k: MX listeners offer STARTTLS, refuse mail" check_listeners
finish_checks "$SMTP_EXPORTER_DOMAINPATH_UNBOUND_LOG" "$SMTP_EXPORTER_DOMAINPATH_MAILLOG" "$SMTP_EXPORTER_DOMAINPATH_MTA_STS_LOG"
