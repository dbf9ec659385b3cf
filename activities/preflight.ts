// What `plan`'s pre-flight report needs from the host, read in one round trip with read-only
// commands: the local units, the running fstab, the installed packages' dependencies, and where
// each health-checked unit comes from. lib/preflight.ts decides.
import { localUnitCarry, parseLocalUnitListing, LOCAL_UNIT_DIR, type LocalUnits } from '../lib/carry.js';
import { parseDepends, parseUnitOrigins, type UnitOrigin } from '../lib/preflight.js';
import type { Profile } from '../lib/profile.js';
import { LOCAL_UNITS_FN } from './carry.js';
import { parseSections, SECTION_FN } from './inspect.js';
import { sh } from './host-io.js';
import type { SshHost } from './ssh.js';

// Args: the local unit directory, then the health units. A unit's file is what systemd says, or
// (systemd not answering) the first match in the unit search paths, its template for an instance.
const GATHER = `
${SECTION_FN}
${LOCAL_UNITS_FN}
owner() {
  if command -v dpkg-query >/dev/null 2>&1; then
    dpkg-query -S "$1" 2>/dev/null | grep -v '^diversion by' | head -n 1 | sed 's/: .*//' || true
  fi
}
units_dir=$1; shift
sec localUnits; local_units "$units_dir"
sec fstab; cat /etc/fstab 2>/dev/null || true
sec depends; dpkg-query -W -f='\${Package}\\t\${Pre-Depends}, \${Depends}\\n' 2>/dev/null || true
sec units
for u in "$@"; do
  frag=$(systemctl show --value -p FragmentPath -- "$u" 2>/dev/null || true)
  if [ -z "$frag" ]; then
    case "$u" in *@*) t="\${u%%@*}@.\${u##*.}" ;; *) t=$u ;; esac
    for d in /etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
      for n in "$u" "$t"; do
        if [ -z "$frag" ] && { [ -e "$d/$n" ] || [ -L "$d/$n" ]; }; then frag="$d/$n"; fi
      done
    done
  fi
  # An alias or a linked unit: its owner is the owner of what it points to.
  if [ -L "$frag" ]; then
    t=$(readlink -- "$frag")
    case "$t" in /*) frag=$t ;; *) frag=$(readlink -f -- "$frag" || printf '%s' "$frag") ;; esac
  fi
  own=''
  if [ -n "$frag" ] && [ "$frag" != /dev/null ]; then
    own=$(owner "$frag")
    # merged /usr: dpkg may know the file under the other name
    case "$frag" in /usr/lib/*) alt=\${frag#/usr} ;; /lib/*) alt=/usr$frag ;; *) alt='' ;; esac
    if [ -z "$own" ] && [ -n "$alt" ]; then own=$(owner "$alt"); fi
  fi
  printf 'U\\t%s\\t%s\\t%s\\n' "$u" "$frag" "$own"
done
`;

export interface PreflightFacts {
  units: UnitOrigin[];
  localUnits: LocalUnits;
  fstab: string;
  depends: Map<string, string[]>;
}

export async function gatherPreflight(h: SshHost, profile: Profile, unitDir = LOCAL_UNIT_DIR): Promise<PreflightFacts> {
  const s = parseSections(await sh(h, GATHER, [unitDir, ...profile.health.units], { timeoutMs: 120_000, maxBuffer: 16 * 1024 * 1024 }));
  return {
    units: parseUnitOrigins(s.units ?? ''),
    localUnits: profile.carry.defaults ? localUnitCarry(parseLocalUnitListing(s.localUnits ?? ''), profile.data.mountPoint, unitDir) : { carry: [], skipped: [] },
    fstab: s.fstab ?? '',
    depends: parseDepends(s.depends ?? ''),
  };
}
