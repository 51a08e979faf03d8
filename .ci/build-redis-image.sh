#!/usr/bin/env bash
# Build a local Docker image containing Debian's redis-server, without pulling
# anything from a registry: the host's redis-server binary and the shared
# libraries it links against are copied into a scratch root filesystem, which
# is then turned into an image with `docker import`.
#
# Usage: .ci/build-redis-image.sh            (run as root on Debian 12)
#        .ci/build-redis-image.sh --aof      (a Redis with WAITAOF: see build-redis-aof-image.sh)
# Env:   LOCK_TEST_REDIS_IMAGE   image name:tag (default: process-lock-redis:7)
#        FORCE_REBUILD=1         rebuild even if an up-to-date image exists
#
# Exit codes: 0 image ready and verified; 3 docker missing or engine not
# answering (caller should fall back to running redis-server directly);
# anything else: failure.
set -euo pipefail

# `--aof`: the image of a Redis with WAITAOF (7.2 or later), from Debian 13's packages.
if [ "${1:-}" = "--aof" ]; then
    exec bash "$(dirname "$0")/build-redis-aof-image.sh"
fi

IMAGE="${LOCK_TEST_REDIS_IMAGE:-process-lock-redis:7}"
# Bump when the image layout / CMD below changes, to invalidate old images.
FORMAT_VERSION=1
LABEL_FP="org.process-lock.redis-fingerprint"
LABEL_VER="org.process-lock.redis-version"
CONTAINER_CMD='["/usr/bin/redis-server","--protected-mode","no","--save","","--appendonly","no","--bind","0.0.0.0","--port","6379"]'

log() { echo "build-redis-image: $*"; }
die() { echo "build-redis-image: ERROR: $*" >&2; exit 1; }

# --- 1. make sure redis-server (and redis-cli) are installed -----------------
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "redis-server/redis-cli not found, installing via apt"
    [ "$(id -u)" -eq 0 ] || die "need root to apt-get install redis-server redis-tools"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
    command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after apt-get install"
fi
REDIS_CMD="$(command -v redis-server)"
# On Debian /usr/bin/redis-server is a symlink to redis-check-rdb; the binary
# picks its mode from argv[0], so run it via the redis-server name, and copy the
# resolved file to /usr/bin/redis-server in the image.
REDIS_BIN="$(readlink -f "$REDIS_CMD")"
REDIS_VERSION="$("$REDIS_CMD" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
[ -n "$REDIS_VERSION" ] || die "could not determine redis-server version from: $("$REDIS_CMD" --version)"
log "host redis-server $REDIS_VERSION ($REDIS_CMD -> $REDIS_BIN)"

# --- 4. docker available? -----------------------------------------------------
if ! command -v docker >/dev/null 2>&1; then
    echo "build-redis-image: docker CLI not found; cannot build $IMAGE (fall back to running redis-server directly)" >&2
    exit 3
fi
if ! docker info >/dev/null 2>&1; then
    echo "build-redis-image: docker engine not answering ('docker info' failed); cannot build $IMAGE (fall back to running redis-server directly)" >&2
    exit 3
fi

# Serialise concurrent runs of this script on the same machine.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/build-redis-image.lock"
    flock 9
fi

# --- files to ship: the binary plus every library ldd reports ----------------
LDD_OUT="$(ldd "$REDIS_BIN")" || die "ldd failed on $REDIS_BIN"
if grep -q 'not found' <<<"$LDD_OUT"; then
    die "ldd reports missing libraries for $REDIS_BIN:"$'\n'"$LDD_OUT"
fi
# Absolute paths only (skips linux-vdso.so.1, keeps the dynamic loader).
mapfile -t LIBS < <(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' <<<"$LDD_OUT" | sort -u)
[ "${#LIBS[@]}" -gt 0 ] || die "ldd listed no libraries for $REDIS_BIN (statically linked?)"

# Fingerprint: content of binary + libraries + image format/CMD.
FINGERPRINT="$(
    {
        echo "format=$FORMAT_VERSION cmd=$CONTAINER_CMD"
        sha256sum "$REDIS_BIN" | awk '{print $1}'
        for lib in "${LIBS[@]}"; do
            printf '%s %s\n' "$lib" "$(sha256sum "$(readlink -f "$lib")" | awk '{print $1}')"
        done
    } | sha256sum | awk '{print $1}'
)"

# --- 2. skip if an up-to-date image already exists ----------------------------
NEED_BUILD=1
OLD_IMAGE_ID=""
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    OLD_IMAGE_ID="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    EXISTING_FP="$(docker image inspect -f "{{ index .Config.Labels \"$LABEL_FP\" }}" "$IMAGE" 2>/dev/null || true)"
    if [ "$EXISTING_FP" = "$FINGERPRINT" ] && [ "${FORCE_REBUILD:-0}" != "1" ]; then
        log "image $IMAGE is up to date (fingerprint ${FINGERPRINT:0:12}), skipping build"
        NEED_BUILD=0
    else
        log "image $IMAGE exists but is stale or rebuild forced, rebuilding"
    fi
fi

ROOTFS=""
CID=""
cleanup() {
    if [ -n "$CID" ]; then docker rm -f "$CID" >/dev/null 2>&1 || true; fi
    if [ -n "$ROOTFS" ] && [ -d "$ROOTFS" ]; then rm -rf "$ROOTFS"; fi
}
trap cleanup EXIT

# --- 3. build -------------------------------------------------------------------
if [ "$NEED_BUILD" = 1 ]; then
    BUILD_START=$SECONDS
    log "building $IMAGE from host files (no registry pull)"
    ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/redis-rootfs.XXXXXX")"
    chmod 0755 "$ROOTFS"
    mkdir -p "$ROOTFS/usr/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/data"
    chmod 1777 "$ROOTFS/tmp"
    chmod 0777 "$ROOTFS/data"
    cp -L "$REDIS_BIN" "$ROOTFS/usr/bin/redis-server"
    chmod 0755 "$ROOTFS/usr/bin/redis-server"
    for lib in "${LIBS[@]}"; do
        # Keep the path ldd printed (e.g. /lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2),
        # dereferencing symlinks so the real file lands at that path.
        cp -L --parents "$lib" "$ROOTFS/"
    done
    cat >"$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
redis:x:999:999:redis:/data:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
    cat >"$ROOTFS/etc/group" <<'EOF'
root:x:0:
redis:x:999:
nogroup:x:65534:
EOF
    echo 'hosts: files dns' >"$ROOTFS/etc/nsswitch.conf"
    # Loader cache so library lookup does not depend on built-in search paths.
    if command -v ldconfig >/dev/null 2>&1; then
        ldconfig -r "$ROOTFS" 2>/dev/null || true
    fi

    tar -C "$ROOTFS" --numeric-owner --owner=0 --group=0 -c . |
        docker import \
            --message "redis-server $REDIS_VERSION copied from host (build-redis-image.sh)" \
            --change "LABEL $LABEL_FP=$FINGERPRINT" \
            --change "LABEL $LABEL_VER=$REDIS_VERSION" \
            --change 'EXPOSE 6379/tcp' \
            --change 'WORKDIR /data' \
            --change "CMD $CONTAINER_CMD" \
            - "$IMAGE" >/dev/null
    rm -rf "$ROOTFS"
    ROOTFS=""
    # Drop the superseded image (now untagged); ignored if still in use.
    if [ -n "$OLD_IMAGE_ID" ] && [ "$OLD_IMAGE_ID" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
        docker rmi "$OLD_IMAGE_ID" >/dev/null 2>&1 || true
    fi
    log "built $IMAGE in $((SECONDS - BUILD_START))s"
fi

# --- 5. verify --------------------------------------------------------------------
log "verifying $IMAGE"
CID="$(docker run -d --rm -p 127.0.0.1::6379 "$IMAGE")" || die "docker run $IMAGE failed"
PORT=""
for _ in $(seq 1 50); do
    PORT="$(docker port "$CID" 6379/tcp 2>/dev/null | head -n1 | sed 's/.*://')" || true
    [ -n "$PORT" ] && break
    sleep 0.2
done
[ -n "$PORT" ] || die "could not find mapped port of container $CID; logs:"$'\n'"$(docker logs "$CID" 2>&1 | tail -n 20)"

READY=0
START_NS=$(date +%s%N)
DEADLINE=$((SECONDS + 10))
while [ $SECONDS -lt $DEADLINE ]; do
    if [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null || true)" = "PONG" ]; then
        READY=1
        break
    fi
    sleep 0.1
done
if [ "$READY" != 1 ]; then
    die "redis in $IMAGE did not answer PING on 127.0.0.1:$PORT within 10s; container logs:"$'\n'"$(docker logs "$CID" 2>&1 | tail -n 20)"
fi
READY_MS=$(( ($(date +%s%N) - START_NS) / 1000000 ))
if ! docker logs "$CID" 2>&1 | grep -q 'Ready to accept connections'; then
    die "redis answered PING but 'Ready to accept connections' is missing from container logs"
fi
IMG_VERSION="$(timeout 5 redis-cli -h 127.0.0.1 -p "$PORT" info server | tr -d '\r' | sed -n 's/^redis_version://p')"
log "OK: image $IMAGE runs redis $IMG_VERSION (PONG on 127.0.0.1:$PORT after ${READY_MS}ms)"
docker stop -t 5 "$CID" >/dev/null 2>&1 || true
CID=""
