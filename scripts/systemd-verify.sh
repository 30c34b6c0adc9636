#!/usr/bin/env bash
# Checks examples/systemd/ without systemd running (make systemd-verify):
#   - systemd-analyze verify finds nothing to say about the unit (an unknown
#     key is only a warning there, so any output fails the check);
#   - the hardening the unit promises is there, and systemd-analyze security
#     rates its exposure at most SYSTEMD_MAX_EXPOSURE (tenths: 20 is 2.0);
#   - the default file's ARGS are flags the binary accepts.
# verify insists that ExecStart's program exists, so it reads a copy of the
# unit whose ExecStart names BINARY instead of /usr/local/bin/smtp_exporter.
#
# Usage: scripts/systemd-verify.sh BINARY
set -euo pipefail

cd "$(dirname "$0")/.."

binary="$(realpath "${1:?usage: scripts/systemd-verify.sh BINARY}")"
unit=examples/systemd/smtp_exporter.service
default=examples/systemd/smtp_exporter.default
max_exposure="${SYSTEMD_MAX_EXPOSURE:-20}"

command -v systemd-analyze >/dev/null || { echo "systemd-verify: systemd-analyze not found (Debian package systemd)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "systemd-verify: FAIL: $*" >&2
	exit 1
}

# The copy keeps the unit's name: verify checks it against the unit's type.
sed "s|^ExecStart=/usr/local/bin/smtp_exporter |ExecStart=$binary |" "$unit" >"$tmp/smtp_exporter.service"
grep -q "^ExecStart=$binary " "$tmp/smtp_exporter.service" || fail "$unit: no ExecStart=/usr/local/bin/smtp_exporter \$ARGS"

out="$(systemd-analyze verify "$tmp/smtp_exporter.service" 2>&1)" || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
echo "systemd-verify: systemd-analyze verify $unit: clean"

# shellcheck disable=SC2016 # $MAINPID is the unit's, not ours.
for want in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes CapabilityBoundingSet= \
	'ExecReload=/bin/kill -HUP $MAINPID' 'EnvironmentFile=-/etc/default/smtp_exporter' LoadCredential=; do
	awk -v w="$want" 'index($0, w) == 1 { found = 1 } END { exit !found }' "$unit" || fail "$unit has no $want"
done
if ! out="$(systemd-analyze security --offline=yes --no-pager --threshold="$max_exposure" "$tmp/smtp_exporter.service" 2>&1)"; then
	grep '✗' <<<"$out" >&2 || true
	fail "exposure above $((max_exposure / 10)).$((max_exposure % 10)): $(tail -n 1 <<<"$out")"
fi
echo "systemd-verify: $(tail -n 1 <<<"$out" | sed 's/^→ //; s/ *[^ -~]*$//')"

# systemd reads the default file as KEY="VALUE" lines, as a shell would
# these; the flags are checked by the binary's own parser, with the
# configuration swapped for one that passes its check.
# shellcheck disable=SC2016 # expanded by the inner shell
args="$(env -i bash -c 'set -a; . "$1"; printf %s "${ARGS-}"' _ "$default")"
read -ra argv <<<"$args"
flags=()
for a in "${argv[@]}"; do
	case "$a" in
	--config.file=*) flags+=("--config.file=$tmp/config.yml") ;;
	*) flags+=("$a") ;;
	esac
done
grep -q -- '--config.file=' <<<"$args" || fail "$default: ARGS name no --config.file="
cp examples/quickstart.yml "$tmp/config.yml"
out="$("$binary" "${flags[@]}" --config.check 2>&1)" ||
	fail "$default: smtp_exporter $args --config.check: $out"
echo "systemd-verify: $default: ARGS accepted"
echo "systemd-verify: ok"
