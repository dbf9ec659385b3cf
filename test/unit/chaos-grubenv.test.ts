// The chaos benchmark's grubenv rule (bench/chaos/host-state.ts, grubenvMatch), on blocks
// written by the real grub-editenv: byte for byte equal, or equal but for an empty `next_entry=`
// line (what GRUB's boot script leaves after consuming a one-time entry); anything else is a
// difference.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { grubenvMatch } from '../../bench/chaos/host-state.js';

let dir: string;
let env: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ab-chaos-grubenv-'));
  env = join(dir, 'grubenv');
  editenv('create');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function editenv(...args: string[]): string {
  const r = spawnSync('grub-editenv', [env, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`grub-editenv ${args.join(' ')}: ${r.stderr}`);
  return readFileSync(env, 'utf8');
}

describe('grubenvMatch', () => {
  it('a block unchanged is identical', () => {
    const before = editenv('set', 'saved_entry=gnulinux-simple-x');
    expect(grubenvMatch(before, readFileSync(env, 'utf8'))).toBe('identical');
  });

  it('a one-time entry that GRUB consumed (next_entry set, then emptied) is the one tolerated difference', () => {
    const before = editenv('set', 'saved_entry=gnulinux-simple-x');
    editenv('set', 'next_entry=ab-upgrade-slot-b');
    const after = editenv('set', 'next_entry=');
    expect(after).not.toBe(before);
    expect(after.length).toBe(before.length);
    expect(grubenvMatch(before, after)).toBe('empty next_entry');
  });

  it('a pending one-time entry, a changed saved_entry or another variable is a difference', () => {
    const before = readFileSync(env, 'utf8');
    expect(grubenvMatch(before, editenv('set', 'next_entry=ab-upgrade-slot-b'))).toBeNull();
    editenv('unset', 'next_entry');
    expect(grubenvMatch(before, editenv('set', 'saved_entry=ab-upgrade-slot-a'))).toBeNull();
    editenv('unset', 'saved_entry');
    expect(grubenvMatch(before, editenv('set', 'recordfail=1'))).toBeNull();
  });

  it('a file of another size is a difference even with the same variables', () => {
    const before = editenv('set', 'saved_entry=x');
    expect(grubenvMatch(before, `${before}#`)).toBeNull();
  });
});
