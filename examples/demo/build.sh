#!/usr/bin/env bash
set -eo pipefail
echo "built at $(date -u +%Y-%m-%dT%H:%M:%SZ) from ${CI_COMMIT_SHA:-unknown}"
