#!/bin/sh
# Start the relay as the image does: listen on every interface (the pod's), port $PORT (8000).
#   deploy/container/start.sh PREFIX
set -eu
prefix="${1:-/opt/relay}"
export RELAY_HOST="${RELAY_HOST:-0.0.0.0}"
exec "$prefix/bin/realtime-server"
