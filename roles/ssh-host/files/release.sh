# Releases the host's lock if this suite holds it. Arguments: remote dir (absolute), lock owner.
lock="$1/doe.lock"
if [ "$(head -n 1 -- "$lock" 2>/dev/null)" = "$2" ]; then
  rm -f -- "$lock"
  printf 'DOE-LOCK=released\n'
else
  printf 'DOE-LOCK=not-ours\n'
fi
