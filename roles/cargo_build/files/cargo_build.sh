# cargo build --release of one project, at most once per commit and host. The build output lives in
# the host's cache (per repository, project folder, arguments and commit) and the project's target/
# links there, so a later suite at the same commit builds nothing. Hosts sharing a file system (the
# local cloud) take turns on a lock: the first builds, the others find the marker, or the failure the
# first recorded (they fail with its error instead of compiling the same broken commit again).
# After a build, the cache keeps the most recently used builds of the project (older ones go).
# Arguments: project folder, cache folder, marker file name, cargo, builds to keep (0: all), then
# cargo's extra arguments. Prints DOE-BUILT after a build.
set -eu
project=$1 cache=$2 marker=$3 cargo=$4 keep=$5
shift 5
case $keep in
  '' | *[!0-9]*) echo "cargo_build_cache_keep: expected a whole number (0 keeps every build), got '$keep'" >&2; exit 2 ;;
esac
cd "$project"
commit=$(git rev-parse HEAD)
origin=$(git config --get remote.origin.url || pwd)
key=$(printf '%s\n' "$origin" "$(git rev-parse --show-prefix)" "$*" | sha1sum | cut -c1-16)
builds="$cache/cargo/$key"
out="$builds/$commit"
failed="$out/.failed"
want="$commit${*:+ $*}"
# A failure recorded after this moment was recorded while this host waited for the lock: the same
# attempt (hosts of one setup wait together). An older one is retried: the environment may be fixed.
since=$(date +%s%N)
while :; do
  mkdir -p "$out"
  exec 9>>"$out/.lock"
  flock 9
  # Pruning by another host may have removed the folder while this one waited: then the lock held is
  # no longer the folder's, and the folder is made again.
  [ "$(stat -c %d:%i "$out/.lock" 2>/dev/null)" = "$(stat -L -c %d:%i /dev/fd/9)" ] && break
  exec 9>&-
done
touch "$out/.lock"  # its time of last use: pruning keeps the most recently used builds
if [ -d target ] && [ ! -L target ]; then
  rm -rf target  # a build made in place before: its output now lives in the cache
fi
# Relative: the link holds wherever the host's file system is seen from (e.g. a test host's /root).
ln -sfn "$(realpath --relative-to=. "$out")" target
if [ "$(cat "target/release/$marker" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
if [ -f "$failed" ] && [ "$(sed -n 2p "$failed")" = "$want" ] && [ "$(sed -n 1p "$failed")" -ge "$since" ]; then
  echo "not built again: this commit failed to build a moment ago on a host sharing $builds; its error:" >&2
  tail -n +3 "$failed" >&2
  exit 1
fi

# Deletes the project's builds beyond the $keep most recently used, never this one; one whose lock
# another host holds (building it, or about to link it) stays for a later build to prune.
prune() {
  [ "$keep" -gt 0 ] || return 0
  here=$(cd target && pwd -P)
  ls -t "$builds"/*/.lock | tail -n +"$((keep + 1))" | while IFS= read -r lock; do
    old=${lock%/.lock}
    [ "$(cd "$old" && pwd -P)" != "$here" ] || continue
    { flock -n 8 && rm -rf "$old"; } 8>>"$lock" || true
  done
}

stderr="$out/.build-stderr"
if "$cargo" build --release "$@" 2>"$stderr"; then
  cat "$stderr" >&2
else
  status=$?
  cat "$stderr" >&2
  # For the hosts waiting on the lock: the time, what was built and the compiler's last lines.
  { date +%s%N; printf '%s\n' "$want"; tail -n 20 "$stderr"; } >"$failed.tmp"
  mv "$failed.tmp" "$failed"
  exit "$status"
fi
rm -f "$failed" "$stderr"
printf '%s\n' "$want" >"target/release/$marker"
prune || echo "warning: could not remove older builds in $builds" >&2
echo DOE-BUILT
