#!/usr/bin/env bash
# Release builds without Docker: `promu crossbuild` runs every build in the
# quay.io/prometheus/golang-builder image, which an offline CI machine cannot
# pull, so this loops over .promu.yml's crossbuild.platforms with `promu
# build` and the Go toolchain's own cross-compilation (the binary is pure Go).
# The layout is promu's: .build/OS-ARCH/ and .tarballs/.
#
# Usage: PROMU=path/to/promu scripts/release.sh crossbuild|tarballs|tarball
#   crossbuild  one static binary per platform in .build/OS-ARCH/
#   tarballs    .tarballs/smtp_exporter-VERSION.OS-ARCH.tar.gz for each of
#               them, and .tarballs/sha256sums.txt (promu checksum)
#   tarball     the tarball of .build/ (make promu-build) for this machine,
#               in the current directory
#
# Tarballs hold the binary and .promu.yml's tarball.files. Directories go in
# without Go test files, testdata and the Kubernetes JSON schemas, which only
# the repository's tests use; scripts/release-check.sh checks the result.
set -euo pipefail

cd "$(dirname "$0")/.."

: "${PROMU:?PROMU must name the promu binary (make promu)}"
GO="${GO:-go}"
BIN=smtp_exporter

# yaml_list SECTION KEY prints the items of the list SECTION.KEY of
# .promu.yml, which is all this script reads from it (the file's layout is
# promu's: two-space steps, "- item" lists).
yaml_list() {
	awk -v section="$1:" -v key="$2:" '
		/^[^ #]/ { in_section = ($1 == section); in_key = 0; next }
		in_section && /^    [^ -]/ { in_key = ($1 == key); next }
		in_section && in_key && /^ +- / { sub(/^ +- +/, ""); print }
	' .promu.yml
}

# promu's version too: --version of the binary and the tarball's name agree.
version() {
	cat VERSION
}

crossbuild() {
	local platforms start os arch goarch goarm
	mapfile -t platforms < <(yaml_list crossbuild platforms)
	[ "${#platforms[@]}" -gt 0 ] || { echo "release: no crossbuild.platforms in .promu.yml" >&2; exit 1; }
	for p in "${platforms[@]}"; do
		os="${p%%/*}" arch="${p#*/}"
		goarch="$arch" goarm=
		case "$arch" in
		armv5 | armv6 | armv7) goarch=arm goarm="${arch#armv}" ;;
		esac
		start=$SECONDS
		GOOS="$os" GOARCH="$goarch" GOARM="$goarm" "$PROMU" build --prefix ".build/$os-$arch"
		echo "release: $os/$arch built in $((SECONDS - start))s"
	done
}

# stage DIR copies the tarball files into DIR, directories without what
# only the repository's tests use.
stage() {
	local dir="$1" f
	mkdir -p "$dir"
	while IFS= read -r f; do
		if [ -d "$f" ]; then
			tar -cf - --exclude='*_test.go' --exclude=testdata \
				--exclude='examples/kubernetes/schemas' "$f" | tar -xf - -C "$dir"
		else
			cp -p "$f" "$dir/"
		fi
	done < <(yaml_list tarball files)
}

# pack BINDIR OS ARCH DESTDIR writes DESTDIR/smtp_exporter-VERSION.OS-ARCH.tar.gz.
pack() {
	local bindir="$1" os="$2" arch="$3" dest="$4" ext='' name tmp
	[ "$os" = windows ] && ext=.exe
	name="$BIN-$(version).$os-$arch"
	tmp="$(mktemp -d)"
	stage "$tmp/$name"
	cp -p "$bindir/$BIN$ext" "$tmp/$name/"
	mkdir -p "$dest"
	# Owner and order fixed, so the tarball does not depend on who built it.
	tar -czf "$dest/$name.tar.gz" -C "$tmp" --owner=0 --group=0 --numeric-owner --sort=name "$name"
	rm -rf "$tmp"
	echo "release: $dest/$name.tar.gz"
}

tarballs() {
	local d os arch n=0
	rm -rf .tarballs
	for d in .build/*-*/; do
		d="${d%/}"
		os="$(basename "$d")" arch="${os#*-}" os="${os%%-*}"
		# promu itself lives in .build/promu-VERSION/.
		[ "$os" = promu ] && continue
		pack "$d" "$os" "$arch" .tarballs
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || { echo "release: nothing in .build/OS-ARCH/: run make crossbuild first" >&2; exit 1; }
	"$PROMU" checksum .tarballs
	echo "release: .tarballs/sha256sums.txt"
}

case "${1:-}" in
crossbuild) crossbuild ;;
tarballs) tarballs ;;
tarball) pack .build "$("$GO" env GOOS)" "$("$GO" env GOARCH)" . ;;
*)
	awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" >&2
	exit 2
	;;
esac
