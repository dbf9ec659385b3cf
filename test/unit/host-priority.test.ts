// The install's priority prelude, run by a real sh on this machine: the nice value and I/O
// priority the kernel then reports for the shell and what it starts.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { lowerPriority, type InstallPriority } from '../../lib/host-priority.js';

/** The nice value and `ionice` of a command the prelude's shell starts, begun at `startNice`. */
function after(p: InstallPriority, startNice = 0): string {
  const script = `${lowerPriority(p)}\nsh -c 'echo "$(nice) $(ionice -p $$)"'`;
  return execFileSync('nice', ['-n', String(startNice), 'sh', '-c', script], { encoding: 'utf8' }).trim();
}

describe('lowerPriority', () => {
  it('the default: nice 10, best-effort at its lowest level, inherited by what the shell starts', () => {
    expect(after({ nice: 10, io: 'low' })).toBe('10 best-effort: prio 7');
  });

  it('idle I/O, and a chosen nice value', () => {
    expect(after({ nice: 19, io: 'idle' })).toBe('19 idle');
  });

  it('io normal leaves the I/O priority as it was', () => {
    expect(after({ nice: 5, io: 'normal' })).toBe(`5 ${execFileSync('sh', ['-c', 'ionice -p $$'], { encoding: 'utf8' }).trim()}`);
  });

  it('never raises the priority of a shell already niced further (as root renice could)', () => {
    expect(after({ nice: 10, io: 'low' }, 15)).toBe('15 best-effort: prio 7');
  });

  it('a host without renice or ionice runs the work as it is', () => {
    const script = `${lowerPriority({ nice: 10, io: 'idle' })}\necho ran`;
    // A PATH with only sh and nice: renice and ionice are not found.
    const out = execFileSync('sh', ['-c', 'd=$(mktemp -d); ln -s "$(command -v nice)" "$d/nice"; PATH="$d" /bin/sh -c "$1"; rc=$?; rm -r "$d"; exit $rc', 'sh', script], { encoding: 'utf8' });
    expect(out.trim()).toBe('ran');
  });

  it('refuses a nice value outside 0–19 rather than render it', () => {
    expect(() => lowerPriority({ nice: 20, io: 'low' })).toThrow(/install\.nice: 20 is not a nice value from 0 to 19/);
    expect(() => lowerPriority({ nice: 1.5, io: 'low' })).toThrow(/install\.nice/);
  });
});
