#!/usr/bin/env bash
# Hand checks of the mail path scripts/mailpath.sh runs: real messages sent
# with swaks, read back over IMAP with python3's imaplib.
#
# Usage: scripts/mailpath-check.sh DIR    (DIR as given to `mailpath.sh start`)
#
#   a  a message submitted as example.test arrives in INBOX, with
#      Authentication-Results from the MX saying spf, dkim and dmarc pass
#   b  a message From: unsigned.test arrives with dkim not passing and
#      dmarc=fail
#   c  a GTUBE message lands in the \Junk folder
#   d  a message to an unknown user brings Postfix's DSN back to the
#      sender's INBOX
#   e  IMAP refuses a wrong password
#
# Every check runs; the exit status is non-zero if any failed. Each message
# found is deleted, so the mailboxes are empty again afterwards. Passwords go
# to swaks and python3 through the environment and never reach the output.
set -euo pipefail

readonly PROG=mailpath-check.sh
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

load_instance_env mailpath.sh "$@"
require_tools swaks python3

readonly GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
# Long enough to wait out Dovecot's first, slow login and a queue run.
readonly WAIT=30
RUN_ID=$(openssl rand -hex 6)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# send CHECK FROM TO [BODY]: submits one message carrying the header
# X-Mailpath-Check: RUN_ID-CHECK, and prints swaks's final reply.
send() {
	local check=$1 from=$2 to=$3 body out
	body=${4:-"mailpath check $check"}
	out=$WORK/swaks-$check
	if ! SWAKS_OPT_auth_password=$(cat "$SMTP_EXPORTER_MAILPATH_SENDER_PASSWORD_FILE") \
		swaks --server "$SMTP_EXPORTER_MAILPATH_SUBMISSION_ADDR" --tls \
		--tls-verify --tls-ca-path "$SMTP_EXPORTER_MAILPATH_CA_FILE" \
		--auth PLAIN --auth-user "$SMTP_EXPORTER_MAILPATH_SENDER" --auth-hide-password \
		--from "$from" --to "$to" --h-From "<$from>" \
		--h-Subject "mailpath check $check" \
		--add-header "X-Mailpath-Check: $RUN_ID-$check" \
		--body "$body" >"$out" 2>&1; then
		echo "  swaks failed:"
		sed 's/^/    /' "$out"
		return 1
	fi
	echo "  sent: $(grep '^<~  250 .*queued' "$out" | tail -n1 | sed 's/^<~  //')"
}

# imap MODE ARGS...: the IMAP side, in python3 (see the modes below).
imap() {
	python3 - "$@" <<'PY'
import email, email.policy, imaplib, os, re, ssl, sys, time

mode, user, pwfile, token = sys.argv[1:5]
env = os.environ
ctx = ssl.create_default_context(cafile=env["SMTP_EXPORTER_MAILPATH_CA_FILE"])
authserv = env["SMTP_EXPORTER_MAILPATH_AUTHSERV_ID"]
wait = float(env.get("WAIT", "30"))


def connect(starttls=False):
    key = "IMAP_ADDR" if starttls else "IMAPS_ADDR"
    host, port = env["SMTP_EXPORTER_MAILPATH_" + key].rsplit(":", 1)
    if starttls:
        c = imaplib.IMAP4(host, int(port), timeout=15)
        c.starttls(ssl_context=ctx)
    else:
        c = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx, timeout=15)
    return c


def password():
    with open(pwfile) as f:
        return f.read()


def folders(c):
    """INBOX and every folder marked \\Junk (RFC 6154), as (name, class)."""
    out = [("INBOX", "inbox")]
    typ, data = c.list()
    for line in data:
        m = re.match(rb'\((?P<flags>[^)]*)\) "(?P<sep>[^"]*)" (?P<name>.+)$', line)
        if m and b"\\Junk" in m.group("flags").split():
            out.append((m.group("name").decode().strip('"'), "junk"))
    return out


def find(c, criteria):
    """Polls until a message matches; returns (folder, class, bytes)."""
    deadline = time.monotonic() + wait
    while True:
        for name, cls in folders(c):
            c.select('"%s"' % name)
            typ, data = c.search(None, *criteria)
            ids = data[0].split()
            if ids:
                typ, msg = c.fetch(ids[0], "(BODY.PEEK[])")
                raw = msg[0][1]
                c.store(ids[0], "+FLAGS", "\\Deleted")
                c.expunge()
                return name, cls, raw
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def auth_results(msg):
    """method -> result from the Authentication-Results fields whose
    authserv-id is ours; any other field could have been forged upstream."""
    res, fields = {}, []
    for v in msg.get_all("Authentication-Results", []):
        v = " ".join(str(v).split())
        if v.split(";", 1)[0].strip().lower() != authserv.lower():
            continue
        fields.append(v)
        for m in re.finditer(r"(?:^|;)\s*(spf|dkim|dmarc)=([a-z]+)", v):
            res.setdefault(m.group(1), m.group(2))
    return res, fields


def fail(why):
    print("  FAIL: " + why)
    sys.exit(1)


if mode == "badlogin":
    c = connect()
    try:
        c.login(user, "wrong-" + token)
    except imaplib.IMAP4.error as e:
        print("  refused: %s" % e)
        sys.exit(0)
    fail("a wrong password was accepted")

t0 = time.monotonic()
c = connect(starttls=(mode == "dsn"))
c.login(user, password())
if mode == "dsn":
    found = find(c, ["TEXT", token])
else:
    found = find(c, ["HEADER", "X-Mailpath-Check", token])
c.logout()
if found is None:
    fail("no message with %s in %s within %.0fs" % (token, user, wait))
folder, cls, raw = found
msg = email.message_from_bytes(raw, policy=email.policy.compat32)
print("  found in %s (%s) of %s, %.1fs after logging in" % (folder, cls, user, time.monotonic() - t0))

if mode == "dsn":
    ctype = msg.get_content_type()
    report = msg.get_param("report-type")
    print("  Content-Type: %s; report-type=%s; From: %s" % (ctype, report, msg["From"]))
    status = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                for k in ("Final-Recipient", "Action", "Status", "Diagnostic-Code"):
                    if block[k]:
                        print("  %s: %s" % (k, " ".join(block[k].split())))
                        status.append((k, block[k]))
    if ctype != "multipart/report" or report != "delivery-status":
        fail("not a delivery status notification")
    if not any(k == "Status" and v.startswith("5.") for k, v in status):
        fail("no permanent failure Status in the DSN")
    sys.exit(0)

res, fields = auth_results(msg)
for f in fields:
    print("  Authentication-Results: " + f)
want_folder = sys.argv[5]
if cls != want_folder:
    fail("landed in %s, want %s" % (cls, want_folder))
for spec in sys.argv[6:]:
    method, op, value = re.match(r"(\w+)(==|!=)(\w+)", spec).groups()
    got = res.get(method, "absent")
    if (got == value) != (op == "=="):
        fail("%s=%s, want %s%s" % (method, got, op, value))
PY
}

sender=$SMTP_EXPORTER_MAILPATH_SENDER
sender_pw=$SMTP_EXPORTER_MAILPATH_SENDER_PASSWORD_FILE
rcpt=$SMTP_EXPORTER_MAILPATH_RCPT
rcpt_pw=$SMTP_EXPORTER_MAILPATH_RCPT_PASSWORD_FILE
export WAIT

check_signed() {
	send a "$sender" "$rcpt" &&
		imap find "$rcpt" "$rcpt_pw" "$RUN_ID-a" inbox spf==pass dkim==pass dmarc==pass
}

check_unsigned() {
	send b "$SMTP_EXPORTER_MAILPATH_UNSIGNED_SENDER" "$rcpt" &&
		imap find "$rcpt" "$rcpt_pw" "$RUN_ID-b" inbox dkim!=pass dmarc==fail
}

check_gtube() {
	send c "$sender" "$rcpt" "$GTUBE" &&
		imap find "$rcpt" "$rcpt_pw" "$RUN_ID-c" junk
}

check_bounce() {
	send d "$sender" "$SMTP_EXPORTER_MAILPATH_UNKNOWN_RCPT" &&
		imap dsn "$sender" "$sender_pw" "$RUN_ID-d"
}

check_bad_password() {
	imap badlogin "$rcpt" /dev/null "$RUN_ID"
}

check "a: signed mail passes spf, dkim, dmarc" check_signed
check "b: unsigned.test fails dkim and dmarc" check_unsigned
check "c: GTUBE lands in Junk" check_gtube
check "d: unknown user bounces to the sender" check_bounce
check "e: wrong IMAP password refused" check_bad_password
finish_checks "$SMTP_EXPORTER_MAILPATH_MAILLOG" "$SMTP_EXPORTER_MAILPATH_DOVECOT_LOG"
