# cargo build --release of one project, at most once per commit and host. The build output lives in
# the host's cache (per repository, project folder, arguments and commit) and the project's target/
# links there, so a later suite at the same commit builds nothing. Hosts sharing a file system (the
# local cloud) take turns on a lock: the first builds, the others find the marker.
# Arguments: project folder, cache folder, marker file name, cargo, then cargo's extra arguments.
# Prints DOE-BUILT after a build.
set -eu
project=$1 cache=$2 marker=$3 cargo=$4
shift 4
cd "$project"
commit=$(git rev-parse HEAD)
origin=$(git config --get remote.origin.url || pwd)
key=$(printf '%s\n' "$origin" "$(git rev-parse --show-prefix)" "$*" | sha1sum | cut -c1-16)
out="$cache/cargo/$key/$commit"
want="$commit${*:+ $*}"
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -d target ] && [ ! -L target ]; then
  rm -rf target  # a build made in place before: its output now lives in the cache
fi
# Relative: the link holds wherever the host's file system is seen from (e.g. a test host's /root).
ln -sfn "$(realpath --relative-to=. "$out")" target
if [ "$(cat "target/release/$marker" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
"$cargo" build --release "$@"
printf '%s\n' "$want" >"target/release/$marker"
echo DOE-BUILT
