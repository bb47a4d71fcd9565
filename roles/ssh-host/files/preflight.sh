# Checks a host before a suite uses it and takes the host's lock. Runs with plain sh (no Python
# needed yet). Arguments: remote dir, results dir (empty or ~/...: relative to the home folder),
# lock owner (<suite>_<id>), "force" or "", the suite's folder name, and "slurm" for a Slurm login
# host (shared by every suite: no lock; sbatch must be there). Prints one line DOE-JSON:<json> with
# home, remote_dir, results_dir and either error or lock (taken|ours|forced|busy|none) and holder: the
# same line format as the queue helper's (doe_cli/run/poll_reply.py reads both).
home=${HOME:-$(cd ~ && pwd)}
error="" lock="" holder=""
json_string() {
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr '\n\r\t' '   ' | tr -d '\000-\037')"
}
finish() {
  printf 'DOE-JSON:{"home":%s,"remote_dir":%s,"results_dir":%s' "$(json_string "$home")" \
    "$(json_string "$remote_dir")" "$(json_string "$results_dir")"
  [ -n "$error" ] && printf ',"error":%s' "$(json_string "$error")"
  [ -n "$lock" ] && printf ',"lock":%s' "$(json_string "$lock")"
  [ -n "$holder" ] && printf ',"holder":%s' "$(json_string "$holder")"
  printf '}\n'
  exit 0
}
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
for dir in "$remote_dir" "$results_dir/$5"; do
  if ! error=$(mkdir -p -- "$dir" 2>&1); then
    error="$dir is not writable ($error)"
    finish
  fi
  # A 64 KiB probe: a full disk or a read-only folder fails here, before any job is queued.
  probe="$dir/.doe-write-probe.$$"
  if ! error=$(head -c 65536 /dev/zero 2>&1 > "$probe"); then
    rm -f -- "$probe"
    error="$dir is not writable ($error)"
    finish
  fi
  rm -f -- "$probe"
done
if [ "$6" = slurm ]; then
  for tool in sbatch squeue scancel; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      error="$tool is not on the PATH of this login host (is Slurm installed here?)"
      finish
    fi
  done
  lock=none
  finish
fi
lock_file="$remote_dir/doe.lock"
# noclobber makes the create atomic: of two controllers, one wins.
if (set -C; printf '%s\n' "$3" > "$lock_file") 2>/dev/null; then
  lock=taken
  finish
fi
holder=$(head -n 1 -- "$lock_file" 2>/dev/null)
if [ "$holder" = "$3" ]; then
  lock=ours holder=""
elif [ "$4" = force ]; then
  printf '%s\n' "$3" > "$lock_file.tmp.$$" && mv -f -- "$lock_file.tmp.$$" "$lock_file"
  lock=forced
else
  lock=busy
fi
finish
