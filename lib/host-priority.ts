// The install's heavy work on a host that keeps serving (formatting and emptying the spare,
// debootstrap, the image's unpack or write and its digest, fsck and growth) runs at a lower CPU
// and I/O priority, so the services on the active slot keep theirs. It is a shell prelude: the
// script's shell takes the priority and every command it starts inherits it.

export interface InstallPriority {
  /** The nice value (0–19) the work runs at, unless it already runs at a higher one. */
  nice: number;
  /** low: best-effort at its lowest level; idle: only when the disk has nothing else to do; normal: as it is. */
  io: 'low' | 'idle' | 'normal';
}

const IONICE: Record<InstallPriority['io'], string | null> = { low: '-c 2 -n 7', idle: '-c 3', normal: null };

/**
 * Shell lines that lower the running shell's priority. renice without -n sets the value (on
 * util-linux and busybox alike); as root it could also raise it, so a shell already niced
 * further is left alone. A host without renice or ionice runs the work as it is. I/O classes
 * hold where the disk's scheduler honours them (BFQ, and mq-deadline since Linux 5.14).
 */
export function lowerPriority(p: InstallPriority): string {
  const nice = checkedNice(p);
  const io = IONICE[p.io];
  return [
    `[ "$(nice 2>/dev/null || echo 0)" -ge ${nice} ] || renice ${nice} -p $$ >/dev/null 2>&1 || true`,
    ...(io ? [`ionice ${io} -p $$ 2>/dev/null || true`] : []),
  ].join('\n');
}

/**
 * Shell lines that lower, to the same nice value, the sshd process serving this connection
 * (the script's nearest sshd ancestor): over SSH, decrypting the image is that process's work.
 * Only for a connection that carries the image alone, since what sshd starts later inherits it.
 */
export function lowerSessionPriority(p: InstallPriority): string {
  const nice = checkedNice(p);
  return `pid=$$
while [ "$pid" -gt 1 ]; do
  case $(cat "/proc/$pid/comm" 2>/dev/null || true) in
    sshd|sshd-session) [ "$(cut -d' ' -f19 "/proc/$pid/stat" 2>/dev/null || echo 0)" -ge ${nice} ] || renice ${nice} -p "$pid" >/dev/null 2>&1 || true; break ;;
  esac
  pid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null || true); [ -n "$pid" ] || break
done`;
}

/** The nice value, checked again here because it is written into the script's text. */
function checkedNice(p: InstallPriority): number {
  if (!Number.isInteger(p.nice) || p.nice < 0 || p.nice > 19) throw new Error(`install.nice: ${p.nice} is not a nice value from 0 to 19`);
  return p.nice;
}
