#!/usr/bin/env bash
# Runs govulncheck against a vulnerability database built locally from the
# golang.org/x/vulndb module. CI reaches the Go module proxy but not
# vuln.go.dev, so the database comes the way every other dependency does:
# as a pinned module version, turned into govulncheck's v1 layout by the
# vulndb project's own indexdb command. Bump VULNDB_VERSION to see newer
# advisories (`go list -m -versions golang.org/x/vulndb` lists none: it has
# only pseudo-versions; take the newest from the proxy's @latest).
#
# Vulnerabilities in required modules that the code reaches fail the run:
# upgrading the module is ours to do. Those in the standard library are
# listed but do not fail it: they are fixed by building with a newer Go
# patch release, which the machine's toolchain decides (the README says
# which release builds should use).
#
# Usage: scripts/govulncheck.sh [packages...]   (default ./...)
set -euo pipefail

GOVULNCHECK_VERSION="${GOVULNCHECK_VERSION:-v1.9.0}"
VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"
GO="${GO:-go}"

cd "$(dirname "$0")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/smtp_exporter/vulndb-$VULNDB_VERSION"
if [ ! -f "$cache/index/db.json" ]; then
	src="$($GO mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
	if [ ! -d "$src/data/osv" ]; then
		echo "govulncheck.sh: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2
		exit 1
	fi
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT
	# indexdb is a main package of the vulndb module: run it from a
	# throw-away module so that the project's go.mod stays free of it.
	(cd "$tmp" && $GO mod init vulndb-index >/dev/null 2>&1 &&
		GOFLAGS= $GO run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp/db")
	mkdir -p "$(dirname "$cache")"
	rm -rf "$cache"
	mv "$tmp/db" "$cache"
fi
[ $# -gt 0 ] || set -- ./...
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# Exit status 3 only says "vulnerabilities found"; the JSON decides.
status=0
$GO run "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" -db "file://$cache" -format json "$@" >"$out" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
	cat "$out" >&2
	exit "$status"
fi
python3 - "$out" <<'PY'
import json, sys

text = open(sys.argv[1]).read()
dec, i, findings = json.JSONDecoder(), 0, []
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i == len(text):
        break
    obj, i = dec.raw_decode(text, i)
    if "finding" in obj:
        findings.append(obj["finding"])

# A finding whose first frame names a function is one the code calls; the
# others are in imported packages or required modules but not reached.
called = {}
for f in findings:
    top = f["trace"][0]
    if top.get("function"):
        called.setdefault((f["osv"], top.get("module", "?"), f.get("fixed_version", "")), True)
stdlib = sorted(k for k in called if k[1] == "stdlib")
modules = sorted(k for k in called if k[1] != "stdlib")
for osv, mod, fixed in stdlib:
    print(f"govulncheck: standard library: {osv} (fixed in Go {fixed.lstrip('v')}): build with a newer Go to clear it")
for osv, mod, fixed in modules:
    print(f"govulncheck: {mod}: {osv} is reached by this code; upgrade to {fixed}")
print(f"govulncheck: {len(modules)} module vulnerabilities reached, {len(stdlib)} in the standard library")
sys.exit(1 if modules else 0)
PY
