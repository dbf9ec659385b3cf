// Killing a command's processes on the host after a timeout or an abort.
/** Environment variable that marks the processes of one run on the host. */
export const RUN_MARKER = 'AB_UPGRADE_RUN';

/**
 * Runs on the host after a timeout or an abort. $1 is the run id. Finds the processes whose
 * initial environment holds AB_UPGRADE_RUN=<id> (the command, or sudo in front of it), adds all
 * their descendants, stops them all, then kills them. Needs only /proc, GNU grep, sed and awk.
 */
export const REAPER_SCRIPT = String.raw`marker="${RUN_MARKER}=$1"
roots=$(grep -lzxF -- "$marker" /proc/[0-9]*/environ 2>/dev/null | sed -n 's#^/proc/\([0-9]*\)/environ$#\1#p')
[ -n "$roots" ] || exit 0
all=$(for f in /proc/[0-9]*/status; do cat "$f" 2>/dev/null; done | awk -v roots="$roots" '
  BEGIN { n = split(roots, r, /[ \n]+/); for (i = 1; i <= n; i++) if (r[i] != "") want[r[i]] = 1 }
  /^Pid:/ { p = $2 }
  /^PPid:/ { parent[p] = $2 }
  END {
    do { changed = 0; for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; changed = 1 } } while (changed)
    for (p in want) print p
  }')
kill -STOP $all 2>/dev/null
kill -KILL $all 2>/dev/null
exit 0`;
