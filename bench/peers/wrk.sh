#!/bin/sh
# wrk on one connection and one thread for SECONDS: what the server can serve to one client
# that does nothing with the answers. Prints "<seconds> <requests>" like the other peers.
# usage: wrk.sh URL TOKEN SECONDS
set -eu
out=$(wrk -t1 -c1 -d"${3}s" -H "Authorization: Bearer $2" -H 'Accept: application/json' "$1")
requests=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9][0-9]*\) requests in \([0-9.]*\)\([mu]*s\).*/\1/p')
elapsed=$(printf '%s\n' "$out" | sed -n 's/^ *[0-9][0-9]* requests in \([0-9.]*[mu]*s\).*/\1/p')
errors=$(printf '%s\n' "$out" | grep -c 'Non-2xx\|Socket errors' || true)
if [ -z "$requests" ] || [ "$errors" != 0 ]; then
  printf '%s\n' "$out" >&2
  exit 1
fi
case "$elapsed" in
  *ms) secs=$(echo "${elapsed%ms}" | awk '{ printf "%.6f", $1 / 1000 }') ;;
  *us) secs=$(echo "${elapsed%us}" | awk '{ printf "%.6f", $1 / 1000000 }') ;;
  *s) secs=${elapsed%s} ;;
esac
echo "$secs $requests"
