#!/usr/bin/env bash
# Checks the release (make release-check, after make tarballs):
#   - VERSION is a semantic version with a "## VERSION / YYYY-MM-DD" heading
#     at the top of CHANGELOG.md;
#   - .tarballs/sha256sums.txt lists every tarball and verifies;
#   - there is one tarball per crossbuild platform of .promu.yml, named
#     smtp_exporter-VERSION.OS-ARCH.tar.gz, with everything under one
#     directory of that name;
#   - each holds the binary, built for its platform (read from the file's
#     header) and executable, LICENSE, README.md, CHANGELOG.md, the example
#     configurations, alerts, runbook, dashboard, systemd unit and Kubernetes
#     manifests, and mixin/ when the repository has one;
#   - none holds a Go test file or testdata;
#   - the build machine's own binary runs and reports VERSION.
#
# Usage: scripts/release-check.sh [DIR]   (default .tarballs)
set -euo pipefail

cd "$(dirname "$0")/.."

dir="${1:-.tarballs}"
errors=0
fail() {
	echo "release-check: FAIL: $*" >&2
	errors=$((errors + 1))
}

version="$(tr -d '[:space:]' <VERSION)"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || fail "VERSION '$version' is not MAJOR.MINOR.PATCH[-PRE]"
heading="$(grep -m 1 '^## ' CHANGELOG.md || true)"
[[ "$heading" =~ ^"## $version / "[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] ||
	fail "CHANGELOG.md's newest heading is '$heading', not '## $version / YYYY-MM-DD'"

[ -d "$dir" ] || { fail "no $dir: run make tarballs"; exit 1; }
[ -s "$dir/sha256sums.txt" ] || { fail "no $dir/sha256sums.txt"; exit 1; }
if ! out="$(cd "$dir" && sha256sum --strict -c sha256sums.txt 2>&1)"; then
	fail "sha256sums.txt does not verify: $out"
fi
for t in "$dir"/*.tar.gz; do
	[ -e "$t" ] || continue
	grep -q "  $(basename "$t")\$" "$dir/sha256sums.txt" || fail "$(basename "$t") is not in sha256sums.txt"
done

# What every tarball holds beside the binary; mixin/ only once it exists.
required=(
	LICENSE README.md CHANGELOG.md
	examples/quickstart.yml examples/smtp_exporter.yml examples/delivery.yml examples/domain.yml
	examples/prometheus.yml examples/alerts.yml examples/RUNBOOK.md examples/grafana/smtp_exporter.json
	examples/systemd/smtp_exporter.service examples/systemd/smtp_exporter.default
	examples/kubernetes/statefulset.yaml
)
if [ -d mixin ]; then
	while IFS= read -r f; do required+=("$f"); done < <(find mixin -type f -not -name '*_test.go' -not -path '*/testdata/*' | sort)
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
host="$(go env GOOS 2>/dev/null || uname -s | tr '[:upper:]' '[:lower:]')-$(go env GOARCH 2>/dev/null || echo amd64)"

mapfile -t platforms < <(awk '
	/^[^ #]/ { in_cb = ($1 == "crossbuild:"); next }
	in_cb && /^ +- / { sub(/^ +- +/, ""); print }
' .promu.yml)
[ "${#platforms[@]}" -gt 0 ] || fail "no crossbuild.platforms in .promu.yml"

for p in "${platforms[@]}"; do
	os="${p%%/*}" arch="${p#*/}"
	name="smtp_exporter-$version.$os-$arch"
	t="$dir/$name.tar.gz"
	[ -f "$t" ] || { fail "no $t"; continue; }
	bin=smtp_exporter
	[ "$os" = windows ] && bin=smtp_exporter.exe
	tar -tzf "$t" >"$tmp/list" || { fail "$t: not a gzip tar"; continue; }
	grep -v "^$name/" "$tmp/list" | sed "s|^|release-check: $t: outside $name/: |" >&2 && fail "$t: entries outside $name/"
	for f in "$bin" "${required[@]}"; do
		grep -qx "$name/$f" "$tmp/list" || fail "$t: no $f"
	done
	grep -E '_test\.go$|(^|/)testdata(/|$)' "$tmp/list" | sed "s|^|release-check: $t: test file: |" >&2 && fail "$t: holds test files"
	tar -xzf "$t" -C "$tmp" "$name/$bin" || { fail "$t: cannot extract $bin"; continue; }
	[ -x "$tmp/$name/$bin" ] || fail "$t: $bin is not executable"
	# The executable's header: format and machine match the platform's.
	got="$(python3 - "$tmp/$name/$bin" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read(4096)
if b[:4] == b"\x7fELF":
    m = struct.unpack_from("<H", b, 18)[0]
    print("linux-" + {62: "amd64", 183: "arm64", 40: "armv7"}.get(m, f"elf{m}"))
elif b[:4] == b"\xcf\xfa\xed\xfe":
    c = struct.unpack_from("<I", b, 4)[0]
    print("darwin-" + {0x01000007: "amd64", 0x0100000C: "arm64"}.get(c, f"macho{c:#x}"))
elif b[:2] == b"MZ":
    pe = struct.unpack_from("<I", b, 0x3C)[0]
    m = struct.unpack_from("<H", b, pe + 4)[0] if b[pe:pe + 4] == b"PE\0\0" else 0
    print("windows-" + {0x8664: "amd64", 0xAA64: "arm64"}.get(m, f"pe{m:#x}"))
else:
    print("unknown")
EOF
)"
	# ELF says ARM, not which ARM; GOARM is in the binary's build info.
	[ "$got" = "$os-$arch" ] || fail "$t: $bin is built for $got, not $os-$arch"
	if [ "$arch" = armv7 ] && command -v go >/dev/null; then
		go version -m "$tmp/$name/$bin" | grep -q 'GOARM=7' || fail "$t: $bin is not built with GOARM=7"
	fi
	if [ "$os-$arch" = "$host" ]; then
		out="$("$tmp/$name/$bin" --version 2>&1)" || fail "$t: $bin --version: $out"
		grep -q "version $version " <<<"$out" || fail "$t: $bin --version does not say $version: $out"
	fi
	rm -rf "${tmp:?}/$name"
	echo "release-check: $t: $(wc -l <"$tmp/list") entries, $bin for $os/$arch"
done

extra="$(comm -13 <(printf "smtp_exporter-$version.%s.tar.gz\n" "${platforms[@]/\//-}" | sort) \
	<(find "$dir" -maxdepth 1 -name '*.tar.gz' -printf '%f\n' | sort))"
[ -z "$extra" ] || fail "tarballs of no crossbuild platform: $extra"

if [ "$errors" -gt 0 ]; then
	echo "release-check: $errors problems" >&2
	exit 1
fi
echo "release-check: ok ($version, ${#platforms[@]} platforms)"
