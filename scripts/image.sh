#!/usr/bin/env bash
# Builds the container image offline and checks it (make image): the layout
# of Dockerfile, built from Dockerfile.scratch with buildah on vfs storage
# (no daemon, no base image to pull, no kernel overlay support needed).
# `buildah run` needs a runtime these machines do not give it, so the checks
# mount the image's root and chroot into it, as the image's user:
#   - the config says: user not root, port 9799 exposed, the entrypoint and
#     command of Dockerfile;
#   - the entrypoint and command as configured, with --version and with
#     --config.check;
#   - the same command serving: /metrics answers with smtp_exporter_build_info;
#   - Dockerfile (the users' image, whose busybox base cannot be pulled
#     here) built on an empty stand-in for that base: the same config, and
#     the binary and example configuration where it says.
# Everything buildah writes goes into one temporary directory, removed at
# the end however the script ends.
#
# Usage: scripts/image.sh BINARY
#   BINARY        the static linux binary of the build machine's architecture
#                 (make image builds .build/linux-ARCH/smtp_exporter)
# Environment:
#   IMAGE_CONFIG  the configuration put in the image (default
#                 examples/smtp_exporter.yml), with examples/secrets/ beside
#                 it; it must pass --config.check there
#   IMAGE_TMPDIR  where the temporary storage goes (default /var/tmp: vfs
#                 storage copies every layer, more than a tmpfs /tmp may hold)
#   IMAGE_OCI     if set, also write the image as an OCI archive there
set -euo pipefail

cd "$(dirname "$0")/.."

binary="${1:?usage: scripts/image.sh BINARY}"
config="${IMAGE_CONFIG:-examples/smtp_exporter.yml}"
tag=localhost/smtp_exporter:check
cacerts=/etc/ssl/certs/ca-certificates.crt

for c in buildah chroot python3 curl; do
	command -v "$c" >/dev/null || { echo "image: $c not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
[ -r "$cacerts" ] || { echo "image: no $cacerts (Debian package ca-certificates)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "image: buildah with vfs storage and chroot need root" >&2; exit 1; }

tmp="$(mktemp -d "${IMAGE_TMPDIR:-/var/tmp}/smtp_exporter-image.XXXXXX")"
bah() {
	buildah --root "$tmp/storage" --runroot "$tmp/run" --storage-driver vfs "$@"
}
ctr='' server=''
chroot="$(command -v chroot)"
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	if [ -n "$ctr" ]; then
		bah umount "$ctr" >/dev/null 2>&1 || true
		bah rm "$ctr" >/dev/null 2>&1 || true
	fi
	bah rmi --all --force >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "image: FAIL: $*" >&2
	exit 1
}

# The image holds the configuration file and the placeholder secrets it
# names by relative path (examples/secrets/), as Dockerfile copies them;
# checked the same way here first, so that a config which needs other files
# beside it is caught before the build.
ctx="$tmp/context"
mkdir -p "$ctx"
cp "$config" "$ctx/config.yml"
cp -r examples/secrets "$ctx/secrets"
if ! "$binary" --config.file="$ctx/config.yml" --config.check >"$tmp/check.log" 2>&1; then
	cat "$tmp/check.log" >&2
	fail "$config does not pass --config.check with examples/secrets/ beside it"
fi
echo "image: config $config"

cp "$binary" "$ctx/smtp_exporter"
cp "$cacerts" "$ctx/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' >"$ctx/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$ctx/group"
chmod 0755 "$ctx/smtp_exporter"
chmod 0644 "$ctx/config.yml" "$ctx/ca-certificates.crt" "$ctx/passwd" "$ctx/group" "$ctx"/secrets/*
chmod 0755 "$ctx/secrets"

start=$SECONDS
bah bud --quiet --layers=false -f "$PWD/Dockerfile.scratch" -t "$tag" "$ctx" >/dev/null
echo "image: built $tag in $((SECONDS - start))s"
if [ -n "${IMAGE_OCI:-}" ]; then
	bah push --quiet "$tag" "oci-archive:$IMAGE_OCI:smtp_exporter:latest"
	echo "image: wrote $IMAGE_OCI"
fi

# image_config IMAGE prints the image's user, then its entrypoint and
# command, one word a line, after checking them as a runtime reads them.
image_config() {
	bah inspect --type image "$1" >"$tmp/inspect.json"
	python3 - "$tmp/inspect.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["OCIv1"]["config"]
user = c.get("User", "")
if user.split(":")[0] in ("", "0", "root"):
    sys.exit(f"image: FAIL: runs as root (User={user!r})")
if "9799/tcp" not in c.get("ExposedPorts", {}):
    sys.exit(f"image: FAIL: port 9799 not exposed: {c.get('ExposedPorts')}")
if c.get("Entrypoint") != ["/bin/smtp_exporter"]:
    sys.exit(f"image: FAIL: entrypoint {c.get('Entrypoint')}")
if c.get("Cmd") != ["--config.file=/etc/smtp_exporter/config.yml"]:
    sys.exit(f"image: FAIL: command {c.get('Cmd')}")
print(user)
for a in c["Entrypoint"] + c["Cmd"]:
    print(a)
EOF
}
mapfile -t argv < <(image_config "$tag")
[ "${#argv[@]}" -gt 1 ] || exit 1
user="${argv[0]}" argv=("${argv[@]:1}")
echo "image: config ok: user $user, port 9799/tcp, entrypoint ${argv[*]}"

# Dockerfile itself, for users, cannot be built here: its busybox base is
# not pullable. Built on an empty stand-in of that name instead, it shows
# that its ARGs, paths (.build/linux-ARCH/, examples/) and config hold, and
# that it matches Dockerfile.scratch's.
arch="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["OCIv1"]["architecture"])' "$tmp/inspect.json")"
base="quay.io/prometheus/busybox-linux-$arch:latest"
[ "$(realpath "$binary")" = "$(realpath ".build/linux-$arch/smtp_exporter")" ] ||
	fail "Dockerfile copies .build/linux-$arch/smtp_exporter; build the image from that binary"
stand_in="$(bah from --quiet scratch)"
bah commit --quiet "$stand_in" "$base" >/dev/null
bah rm "$stand_in" >/dev/null
bah bud --quiet --layers=false --pull-never --build-arg ARCH="$arch" -f "$PWD/Dockerfile" -t localhost/smtp_exporter:dockerfile . >/dev/null
mapfile -t dargv < <(image_config localhost/smtp_exporter:dockerfile)
[ "${#dargv[@]}" -gt 1 ] || exit 1
[ "${dargv[*]}" = "$user ${argv[*]}" ] || fail "Dockerfile's user and command (${dargv[*]}) differ from Dockerfile.scratch's ($user ${argv[*]})"
ctr="$(bah from --quiet localhost/smtp_exporter:dockerfile)"
root="$(bah mount "$ctr")"
cmp -s "$root/bin/smtp_exporter" "$binary" || fail "Dockerfile: /bin/smtp_exporter is not $binary"
cmp -s "$root/etc/smtp_exporter/config.yml" examples/smtp_exporter.yml || fail "Dockerfile: no examples/smtp_exporter.yml at /etc/smtp_exporter/config.yml"
diff -r "$root/etc/smtp_exporter/secrets" examples/secrets >/dev/null || fail "Dockerfile: no examples/secrets/ at /etc/smtp_exporter/secrets"
bah umount "$ctr" >/dev/null
bah rm "$ctr" >/dev/null
ctr=''
echo "image: Dockerfile on a stand-in $base: the same user, port, entrypoint and command, the binary and config in place"

ctr="$(bah from --quiet "$tag")"
root="$(bah mount "$ctr")"
# chroot --userspec drops to the image's user, with an environment as empty
# as the image's. chroot(1) always starts in /, not in the image's working
# directory: the command names only absolute paths.
in_image() {
	env -i "$chroot" --userspec="$user" "$root" "$@"
}
[ -f "$root/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA bundle in the image"
[ ! -e "$root/bin/sh" ] || fail "the scratch image has a shell"

out="$(in_image "${argv[@]}" --version 2>&1)" || fail "--version: $out"
echo "image: --version: $(head -n 1 <<<"$out")"
grep -q "version $(cat VERSION)" <<<"$out" || fail "--version does not say $(cat VERSION): $out"

out="$(in_image "${argv[@]}" --config.check 2>&1)" || fail "--config.check: $out"
echo "image: --config.check passes as user $user"

# Served for real on a free loopback port (the chroot shares the host's
# network), as the image's user, until /metrics answers.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Not through in_image: a function run in the background is a subshell,
# whose pid $! would be, and killing it would leave the exporter running.
# env and chroot exec, so $! is the exporter itself.
env -i "$chroot" --userspec="$user" "$root" "${argv[@]}" --web.listen-address="127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
	if curl -fsS "http://127.0.0.1:$port/metrics" >"$tmp/metrics" 2>/dev/null; then break; fi
	kill -0 "$server" 2>/dev/null || { cat "$tmp/serve.log" >&2; fail "the exporter exited"; }
	sleep 0.1
done
grep -q '^smtp_exporter_build_info{' "$tmp/metrics" || { cat "$tmp/serve.log" >&2; fail "/metrics has no smtp_exporter_build_info"; }
kill "$server"
wait "$server" || true
server=
# The exporter is gone, not left behind holding the port and the image.
! curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null || fail "the exporter still serves on 127.0.0.1:$port after it was stopped"
echo "image: served /metrics on 127.0.0.1:$port as user $user"
echo "image: ok"
