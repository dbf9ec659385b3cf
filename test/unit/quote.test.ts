import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { shJoin, shQuote } from '../../lib/quote.js';

const HOSTILE = [
  '',
  ' ',
  "'",
  "''",
  "it's",
  '"',
  '\\',
  '\\\'',
  "'\\''",
  '$(id)',
  '${HOME}',
  '$HOME',
  '`id`',
  'a\nb',
  '\n',
  'a;b',
  'a && rm -rf /',
  'a | b',
  '*',
  '/etc/*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '-n',
  '--',
  '-rf',
  '!',
  '!!',
  '#comment',
  'a#b',
  '{a,b}',
  'a b\tc',
  '\t',
  '\r\n',
  'ünïcødé ✓',
  '日本語',
  '🙂',
  '\x01\x7f',
  'FOO=bar',
  '%s\\0',
  '>out',
  '<in',
  '&',
  '(sub)',
  'a=$(reboot)',
];

function shells(): string[] {
  return ['/bin/sh', '/bin/dash', '/bin/bash'].filter((s) => existsSync(s));
}

/** Run `printf '%s\0' <quoted args>` in a real shell and split its NUL-separated output. */
function roundTrip(shell: string, args: string[]): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${shJoin(args)}`], { encoding: 'utf8', timeout: 10_000 });
  const parts = out.split('\0');
  expect(parts.pop()).toBe('');
  return parts;
}

describe('shQuote', () => {
  it('leaves safe words alone', () => {
    for (const w of ['abc', 'A-Z_0.9', '/usr/bin/env', 'user@host:22', 'a=b,c+d%e', 'UUID=1234-ABCD', '--long-opt', '-x']) {
      // NAME=... is the one safe-looking form that must be quoted (see below).
      if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) continue;
      expect(shQuote(w)).toBe(w);
    }
  });

  it('quotes the empty string as two single quotes', () => {
    expect(shQuote('')).toBe("''");
  });

  it("single-quotes everything else, writing ' as '\\''", () => {
    expect(shQuote('a b')).toBe("'a b'");
    expect(shQuote("it's")).toBe("'it'\\''s'");
    expect(shQuote("'")).toBe("''\\'''");
    expect(shQuote('$(id)')).toBe("'$(id)'");
    expect(shQuote('`id`')).toBe("'`id`'");
    expect(shQuote('*')).toBe("'*'");
    expect(shQuote('~')).toBe("'~'");
    expect(shQuote('a\nb')).toBe("'a\nb'");
    expect(shQuote('日本語')).toBe("'日本語'");
  });

  it('quotes NAME=value so it can never become an assignment in command position', () => {
    expect(shQuote('FOO=bar')).toBe("'FOO=bar'");
    expect(shQuote('_x1=')).toBe("'_x1='");
    // Not an assignment (does not start with a name): may stay bare.
    expect(shQuote('--opt=value')).toBe('--opt=value');
    expect(shQuote('1=2')).toBe('1=2');
  });

  it('refuses NUL bytes with a clear error', () => {
    expect(() => shQuote('a\0b')).toThrow(/NUL byte/);
    expect(() => shJoin(['ok', '\0'])).toThrow(/NUL byte/);
  });

  it('refuses non-strings', () => {
    expect(() => shQuote(undefined as unknown as string)).toThrow(TypeError);
    expect(() => shQuote(42 as unknown as string)).toThrow(TypeError);
  });

  it('never lets a single quote end the quoting', () => {
    for (const s of HOSTILE) {
      const q = shQuote(s);
      if (q === s) continue;
      // Every quoted form is a sequence of '...' runs joined by \' escapes.
      expect(q).toMatch(/^(?:'[^']*'|\\')+$/);
    }
  });
});

describe('shJoin', () => {
  it('joins quoted words with single spaces', () => {
    expect(shJoin(['echo', 'a b', '', "it's"])).toBe("echo 'a b' '' 'it'\\''s'");
    expect(shJoin([])).toBe('');
  });

  for (const shell of shells()) {
    it(`round-trips hostile arguments through ${shell} byte for byte`, () => {
      expect(roundTrip(shell, HOSTILE)).toEqual(HOSTILE);
    });
  }

  it('round-trips an assignment-looking word in command position as a command name', () => {
    // If FOO=bar were left bare, the shell would assign it and run `true`; quoted, it is a command
    // named "FOO=bar", which does not exist.
    let status = 0;
    try {
      execFileSync('/bin/sh', ['-c', shJoin(['FOO=bar', 'true'])], { stdio: 'ignore', timeout: 10_000 });
    } catch (e) {
      status = (e as { status: number }).status;
    }
    expect(status).toBe(127);
  });

  it('keeps a long random byte soup intact', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const args: string[] = [];
    for (let i = 0; i < 200; i++) {
      let s = '';
      const len = rnd() % 20;
      for (let j = 0; j < len; j++) s += String.fromCharCode(1 + (rnd() % 126));
      args.push(s);
    }
    expect(roundTrip('/bin/sh', args)).toEqual(args);
  });
});
