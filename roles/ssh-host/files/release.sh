# Releases the host's lock if this suite holds it. Arguments: remote dir (absolute), lock owner.
# Prints one line DOE-JSON:{"lock": "released"|"not-ours"}.
lock="$1/doe.lock"
if [ "$(head -n 1 -- "$lock" 2>/dev/null)" = "$2" ]; then
  rm -f -- "$lock"
  printf 'DOE-JSON:{"lock":"released"}\n'
else
  printf 'DOE-JSON:{"lock":"not-ours"}\n'
fi
