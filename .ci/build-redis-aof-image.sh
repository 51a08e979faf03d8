#!/usr/bin/env bash
# Build a local Docker image of a Redis that has WAITAOF (7.2 or later), for the tests of
# replica acknowledgement by the append-only file: Debian 12's redis-server is 7.0. Nothing is
# pulled from a registry: Debian 13 (trixie)'s redis-server and the libraries it links
# against are downloaded from Debian's archive (as every other package here), unpacked into a
# root filesystem, and turned into an image with `docker import`.
#
# Usage: .ci/build-redis-aof-image.sh      (or .ci/build-redis-image.sh --aof)
# Env:   LOCK_TEST_REDIS_AOF_IMAGE   image name:tag (default: process-lock-redis:8)
#        FORCE_REBUILD=1             rebuild even if the image exists
#
# Exit codes: 0 image ready and verified; 3 docker missing or engine not answering; anything
# else: failure.
set -euo pipefail

IMAGE="${LOCK_TEST_REDIS_AOF_IMAGE:-process-lock-redis:8}"
SUITE=trixie
# Bump when the package list or the image layout changes.
FORMAT_VERSION=1
LABEL="org.process-lock.aof-image-format"
# redis-server is a symlink to redis-check-rdb (in redis-tools), and the libraries its
# binary, libssl, libsystemd and libstdc++ need (readelf -d, NEEDED).
PACKAGES=(redis-server redis-tools libc6 libatomic1 libjemalloc2 liblzf1 libssl3t64
  libstdc++6 libgcc-s1 libsystemd0 libcap2 zlib1g libzstd1)
CMD='["/usr/bin/redis-server","--protected-mode","no","--save","","--appendonly","no","--bind","0.0.0.0","--port","6379"]'

log() { echo "build-redis-aof-image: $*"; }
die() { echo "build-redis-aof-image: ERROR: $*" >&2; exit 1; }

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "build-redis-aof-image: no docker engine answering; cannot build $IMAGE" >&2
    exit 3
fi

# Starts a container of the image and checks it answers PING and knows WAITAOF.
verify() {
    local cid out
    cid="$(docker run -d --rm "$IMAGE")" || die "could not start a container of $IMAGE"
    for _ in $(seq 1 100); do
        out="$(docker exec "$cid" /usr/bin/redis-cli ping 2>/dev/null || true)"
        [ "$out" = "PONG" ] && break
        sleep 0.1
    done
    if [ "$out" != "PONG" ]; then
        docker logs "$cid" >&2 || true
        docker rm -f "$cid" >/dev/null 2>&1 || true
        die "$IMAGE did not answer PING"
    fi
    out="$(docker exec "$cid" /usr/bin/redis-cli command info waitaof 2>&1 || true)"
    local version
    version="$(docker exec "$cid" /usr/bin/redis-cli info server | tr -d '\r' | sed -n 's/^redis_version://p')"
    docker rm -f "$cid" >/dev/null 2>&1 || true
    grep -qi waitaof <<<"$out" || die "$IMAGE (Redis $version) does not know WAITAOF: $out"
    log "OK: image $IMAGE runs Redis $version, which has WAITAOF"
}

if docker image inspect "$IMAGE" >/dev/null 2>&1 && [ "${FORCE_REBUILD:-0}" != "1" ]; then
    existing="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true)"
    if [ "$existing" = "$FORMAT_VERSION" ]; then
        log "image $IMAGE exists, skipping build"
        verify
        exit 0
    fi
fi

START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/redis-aof-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/etc" "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/debs" "$WORK/root"
touch "$WORK/status"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main" \
    >"$WORK/etc/sources.list"
# A private apt state: the machine's own package lists and sources are left alone.
APT=(-o "Dir::Etc::SourceList=$WORK/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache"
    -o "Dir::State::status=$WORK/status" -o APT::Sandbox::User=root -q)
log "downloading Debian $SUITE's ${PACKAGES[*]}"
apt-get "${APT[@]}" update >/dev/null || die "apt-get update for $SUITE failed"
(cd "$WORK/debs" && apt-get "${APT[@]}" download "${PACKAGES[@]}" >/dev/null) ||
    die "downloading the packages failed"

ROOT="$WORK/root"
for deb in "$WORK"/debs/*.deb; do
    dpkg -x "$deb" "$ROOT"
done
# Debian 13 has merged /usr: the binaries' interpreter is /lib64/ld-linux-x86-64.so.2.
for dir in bin lib lib64 sbin; do
    if [ ! -e "$ROOT/$dir" ] && [ -d "$ROOT/usr/$dir" ]; then
        ln -s "usr/$dir" "$ROOT/$dir"
    fi
done
mkdir -p "$ROOT/tmp" "$ROOT/data"
chmod 1777 "$ROOT/tmp"
chmod 0777 "$ROOT/data"
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
redis:x:999:999:redis:/data:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
redis:x:999:
nogroup:x:65534:
EOF

tar -C "$ROOT" -c . | docker import \
    --change "CMD $CMD" \
    --change "WORKDIR /data" \
    --change "EXPOSE 6379" \
    --change "LABEL $LABEL=$FORMAT_VERSION" \
    - "$IMAGE" >/dev/null || die "docker import failed"
log "built $IMAGE in $((SECONDS - START)) s"
verify
