#!/bin/sh
# Writes COUNT journal archives of about 2.7 MB of text each. journald reads a
# stream asynchronously, so each batch is waited for until every line is in the
# journal before the rotation: otherwise the tail of a batch lands in the next
# file, or in the active one while a test compares two runs.
set -eu
count=${1:-6}
lines=14815   # 2000000 random bytes in base64, 180 characters a line
run=$(date +%s)
n=1
while [ "$n" -le "$count" ]; do
  tag="ops-runbook-filler-$run-$n"
  head -c 2000000 /dev/urandom | base64 -w 180 | systemd-cat -t "$tag"
  waited=0
  until [ "$(journalctl -q -t "$tag" -o cat | wc -l)" -ge "$lines" ]; do
    waited=$((waited + 1))
    [ "$waited" -le 120 ] || { echo "journald did not take $tag within 60 s" >&2; exit 1; }
    sleep 0.5
  done
  journalctl --rotate
  n=$((n + 1))
done
