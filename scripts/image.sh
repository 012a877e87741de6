#!/usr/bin/env bash
# Build flashsale's container image without a Docker engine, and check it.
#
#   scripts/image.sh [TAG]            from source, as docker build . does
#   scripts/image.sh --release [TAG]  goreleaser's image (Dockerfile.release)
#
# (TAG defaults to flashsale:dev → localhost/flashsale:dev.)
#
# 1. From source: `buildah --storage-driver vfs bud` of the repository's
#    Dockerfile (a golang build stage, then FROM scratch), the version
#    passed as the VERSION build argument and GOPROXY passed through. The
#    golang base image is pulled unless buildah's store has it: if it can
#    be neither, the script says so and exits 3.
#    With --release: a static linux binary (CGO_ENABLED=0) staged at
#    dist/image/linux/ARCH/, where goreleaser's dockers_v2 would put it,
#    and a bud of Dockerfile.release there. Both in Docker format (the OCI
#    format has no HEALTHCHECK: buildah drops it), with chroot isolation
#    (no OCI runtime needed).
# 2. checks on the result: non-root user, port 8080, the health check, the
#    entrypoint, one layer, the files in it (the binary, static; from
#    source also the CA bundle); then the binary is run from the image's
#    own root file system (buildah from + mount), as the image's user, for
#    --version, and the health check command against a server started from
#    it; finally `buildah run --isolation chroot` runs --version inside the
#    image (reported, not required).
#
# buildah comes from Debian (apt-get install buildah); the script installs
# it when missing and it runs as root. VERSION overrides the version baked
# into the binary (default: git describe). Every step prints what it found;
# the exit status is non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

release=
if [[ ${1:-} == --release ]]; then
  release=1
  shift
fi
tag=${1:-flashsale:dev}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
arch=$(go env GOARCH)
ctx=dist/image
bah=(buildah --storage-driver vfs)
fail=0
check() { # check NAME GOT WANT
  if [[ $2 == "$3" ]]; then
    echo "image: ok   $1: $2"
  else
    echo "image: FAIL $1: got $2, want $3"
    fail=1
  fi
}

if ! command -v buildah >/dev/null 2>&1; then
  if [[ $(id -u) != 0 ]]; then
    echo "image: buildah is missing: apt-get install buildah" >&2
    exit 1
  fi
  echo "image: installing Debian's buildah"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah
fi
buildah --version

start=$(date +%s)
ref=localhost/${tag}
[[ $tag == */* ]] && ref=$tag
previous=$("${bah[@]}" images --quiet "$ref" 2>/dev/null || true)
bud=("${bah[@]}" bud --quiet --format docker --isolation chroot --platform "linux/$arch" -t "$tag")
rm -rf "$ctx"
mkdir -p "$ctx" # the server's log, and with --release the build context
if [[ -n $release ]]; then
  mkdir -p "$ctx/linux/$arch"
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$ctx/linux/$arch/flashsale" .
  cp Dockerfile.release "$ctx/Dockerfile"
  "${bud[@]}" "$ctx"
  files="./flashsale "
else
  base=docker.io/library/golang:$(sed -n 's/^ARG GO_VERSION=//p' Dockerfile)
  # buildah pull fetches only what its store lacks.
  if ! "${bah[@]}" pull --quiet "$base" >/dev/null 2>&1; then
    echo "image: cannot build from source: the base image $base is not in buildah's store and cannot be pulled (no registry access?); scripts/image.sh --release builds goreleaser's image without it" >&2
    exit 3
  fi
  "${bud[@]}" --pull=false --build-arg "VERSION=$version" --build-arg "GOPROXY=$(go env GOPROXY)" .
  files="./etc ./etc/ssl ./etc/ssl/certs ./etc/ssl/certs/ca-certificates.crt ./flashsale "
fi
# The image the tag named before is left without a name: drop it, so that
# repeated runs do not pile up copies in vfs storage.
if [[ -n $previous && $previous != "$("${bah[@]}" images --quiet "$ref")" ]]; then
  "${bah[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi

cfg() { "${bah[@]}" inspect --type image --format "$1" "$ref"; }
check user "$(cfg '{{.Docker.Config.User}}')" "65532:65532"
check "exposed ports" "$(cfg '{{range $p, $_ := .Docker.Config.ExposedPorts}}{{$p}} {{end}}')" "8080/tcp "
check healthcheck "$(cfg '{{if .Docker.Config.Healthcheck}}{{range .Docker.Config.Healthcheck.Test}}{{.}} {{end}}{{end}}')" "CMD /flashsale ping --addr 127.0.0.1:8080 "
check entrypoint "$(cfg '{{range .Docker.Config.Entrypoint}}{{.}} {{end}}')" "/flashsale "
check cmd "$(cfg '{{range .Docker.Config.Cmd}}{{.}} {{end}}')" "serve "
env=" $(cfg '{{range .Docker.Config.Env}}{{.}} {{end}}')"
for kv in LISTEN_ADDR=:8080 REDIS_ADDR=redis:6379; do
  check "env ${kv%%=*}" "$([[ $env == *" $kv "* ]] && echo "$kv")" "$kv"
done
check layers "$(cfg '{{len .Docker.RootFS.DiffIDs}}')" "1"
echo "image: size $("${bah[@]}" images --format '{{.Size}}' "$ref")"

ctr=$("${bah[@]}" from --quiet "$ref")
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null || true
  "${bah[@]}" umount "$ctr" >/dev/null 2>&1 || true
  "${bah[@]}" rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
root=$("${bah[@]}" mount "$ctr")
check "root file system" "$(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')" "$files"
# Static: no program interpreter (dynamic loader) in the ELF headers.
if readelf -l "$root/flashsale" 2>/dev/null | grep -q INTERP; then
  check "static binary" dynamic static
else
  check "static binary" static static
fi
as_image_user=(setpriv --reuid 65532 --regid 65532 --clear-groups)
command -v setpriv >/dev/null 2>&1 || as_image_user=()
check "--version from the image (uid 65532)" "$("${as_image_user[@]}" "$root/flashsale" --version)" "flashsale version $version"

if "$root/flashsale" ping --help >/dev/null 2>&1; then
  port=$(( 20000 + RANDOM % 20000 ))
  "${as_image_user[@]}" "$root/flashsale" serve --redis-addr embedded --listen "127.0.0.1:$port" --log-level warn >"$ctx/serve.log" 2>&1 &
  server=$!
  ok=
  for _ in $(seq 50); do
    if "$root/flashsale" ping --addr "127.0.0.1:$port" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  check "health check command against serve from the image" "${ok:+exit 0}" "exit 0"
  kill "$server"; wait "$server" 2>/dev/null || true; server=
else
  echo "image: skip the health check command: this binary has no 'ping' subcommand yet"
fi

# buildah run with chroot isolation needs no OCI runtime (the default
# isolation wants crun or runc, and a cgroup setup they accept); it runs
# the command with the image's config, its user included.
if out=$("${bah[@]}" run --isolation chroot "$ctr" -- /flashsale --version 2>&1); then
  check "buildah run --isolation chroot /flashsale --version" "$out" "flashsale version $version"
else
  echo "image: note buildah run --isolation chroot did not work here: ${out##*$'\n'}"
fi

echo "image: $ref built and checked in $(( $(date +%s) - start ))s"
exit "$fail"
