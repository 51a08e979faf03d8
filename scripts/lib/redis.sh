# Sourced by scripts/test and scripts/bench-report: makes Redis ready for the tests and benches.
#
# Installs Debian's redis-server when it is missing (as root, or with sudo), and, when a Docker
# engine answers, builds the local image process-lock-redis:7 from it
# (.ci/build-redis-image.sh: no registry is needed). With the image, every Redis test and bench
# runs on testcontainers (LOCK_TEST_REQUIRE_DOCKER=1: no silent fallback); without Docker they
# use redis-server from PATH, and say so.
prepare_redis() {
  if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      echo "redis-server is missing: installing Debian's redis-server with sudo"
      sudo apt-get update
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools
    else
      echo "redis-server is missing: install it (apt-get install redis-server redis-tools)" >&2
      exit 1
    fi
  fi
  export LOCK_TEST_REDIS_IMAGE="${LOCK_TEST_REDIS_IMAGE:-process-lock-redis:7}"
  local image_status=0
  bash .ci/build-redis-image.sh || image_status=$?
  case "$image_status" in
    0)
      # With an image, every Redis test must run on testcontainers: no silent fallback.
      export LOCK_TEST_REQUIRE_DOCKER=1
      echo "tests use testcontainers with image $LOCK_TEST_REDIS_IMAGE"
      # A Redis with WAITAOF (7.2 or later), for replica acknowledgement by the append-only
      # file: Debian 12's is 7.0 (.ci/build-redis-aof-image.sh, from Debian 13's packages).
      export LOCK_TEST_REDIS_AOF_IMAGE="${LOCK_TEST_REDIS_AOF_IMAGE:-process-lock-redis:8}"
      bash .ci/build-redis-image.sh --aof
      ;;
    3)
      echo "NO DOCKER ENGINE: the Redis tests use redis-server from PATH ($(command -v redis-server))"
      echo "(the tests of WAITAOF need a Redis 7.2 or later, from an image: they fail without Docker)"
      ;;
    *)
      echo "building the Redis image failed ($image_status)" >&2
      exit "$image_status"
      ;;
  esac
}
