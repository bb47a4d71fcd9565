# Checks a host before a suite uses it and takes the host's lock. Runs with plain sh (no Python
# needed yet). Arguments: remote dir, results dir (empty or ~/...: relative to the home folder),
# lock owner (<suite>_<id>), "force" or "", the suite's folder name, and "slurm" for a Slurm login
# host (shared by every suite: no lock; sbatch must be there). Prints DOE-<KEY>=<value> lines.
home=${HOME:-$(cd ~ && pwd)}
expand() {
  case $1 in
    "") printf '%s' "$2" ;;
    "~") printf '%s' "$home" ;;
    "~/"*) printf '%s/%s' "$home" "${1#"~/"}" ;;
    *) printf '%s' "$1" ;;
  esac
}
remote_dir=$(expand "$1" "$home/doe-suite")
results_dir=$(expand "$2" "$home/doe-suite-results")
printf 'DOE-HOME=%s\nDOE-REMOTE-DIR=%s\nDOE-RESULTS-DIR=%s\n' "$home" "$remote_dir" "$results_dir"
for dir in "$remote_dir" "$results_dir/$5"; do
  if ! error=$(mkdir -p -- "$dir" 2>&1); then
    printf 'DOE-ERROR=%s is not writable (%s)\n' "$dir" "$error"
    exit 0
  fi
  # A 64 KiB probe: a full disk or a read-only folder fails here, before any job is queued.
  probe="$dir/.doe-write-probe.$$"
  if ! error=$(head -c 65536 /dev/zero 2>&1 > "$probe"); then
    rm -f -- "$probe"
    printf 'DOE-ERROR=%s is not writable (%s)\n' "$dir" "$(printf '%s' "$error" | tr '\n' ' ')"
    exit 0
  fi
  rm -f -- "$probe"
done
if [ "$6" = slurm ]; then
  for tool in sbatch squeue scancel; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      printf 'DOE-ERROR=%s is not on the PATH of this login host (is Slurm installed here?)\n' "$tool"
      exit 0
    fi
  done
  printf 'DOE-LOCK=none\n'
  exit 0
fi
lock="$remote_dir/doe.lock"
# noclobber makes the create atomic: of two controllers, one wins.
if (set -C; printf '%s\n' "$3" > "$lock") 2>/dev/null; then
  printf 'DOE-LOCK=taken\n'
  exit 0
fi
holder=$(head -n 1 -- "$lock" 2>/dev/null)
if [ "$holder" = "$3" ]; then
  printf 'DOE-LOCK=ours\n'
elif [ "$4" = force ]; then
  printf '%s\n' "$3" > "$lock.tmp.$$" && mv -f -- "$lock.tmp.$$" "$lock"
  printf 'DOE-LOCK=forced\nDOE-HOLDER=%s\n' "$holder"
else
  printf 'DOE-LOCK=busy\nDOE-HOLDER=%s\n' "$holder"
fi
