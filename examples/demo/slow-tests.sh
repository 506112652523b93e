#!/usr/bin/env bash
# Prints over more than 10 seconds, so its log is seen growing live.
set -eo pipefail
for i in $(seq 1 12); do
  echo "test $i/12 ... ok"
  sleep 1
done
echo "12 tests passed"
