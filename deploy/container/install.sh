#!/bin/sh
# Install the relay (the plain package: no test or benchmark extras) into a virtualenv at PREFIX.
# The Containerfile runs this; CI runs it too (tests/test_deploy.py), so the image's steps are proven
# even where no container runtime works.
#   deploy/container/install.sh SOURCE_DIR PREFIX
# The install is editable because the relay serves static/ (the browser client, the demo page) from
# beside the package, and the package's wheel does not carry that folder.
set -eu
src="${1:?source directory}"
prefix="${2:?install prefix}"
python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet "$src"
"$prefix/bin/python" -c "import realtime_server.app"
