// activities/ssh.ts against a real OpenSSH sshd on loopback (test/helpers/sshd.ts).
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAllHosts,
  CommandError,
  HostKeyMismatchError,
  SshConnectError,
  SshHost,
  targetFromProfile,
  withHost,
  type ExecResult,
} from '../../activities/ssh.js';
import { parseProfile } from '../../lib/profile.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const T = 30_000; // per-test bound

const HOSTILE = [
  '',
  ' ',
  "'",
  "it's",
  '"double"',
  '\\',
  "'\\''",
  '$(touch /tmp/ab-upgrade-pwned)',
  '${HOME}',
  '`touch /tmp/ab-upgrade-pwned`',
  'a\nb',
  '\n',
  'x; touch /tmp/ab-upgrade-pwned',
  'a && b || c',
  '*',
  '/*',
  '?',
  '~',
  '-n',
  '--',
  '-e',
  '!',
  '#',
  '{a,b}',
  'tab\there',
  'ünïcødé ✓ 日本語 🙂',
  'FOO=bar',
  '%s\\0',
  '>x',
  '<y',
  '|',
  '&',
];

/** Poll cond until true or the deadline; returns whether it became true. */
async function until(cond: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

/** How many processes on the host run exactly this command line (NUL-separated argv). */
async function countProcs(h: SshHost, argv: string[]): Promise<number> {
  const r = await h.script(
    `want=$1; n=0
for p in /proc/[0-9]*; do
  c=$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null) || continue
  [ "$c" = "$want" ] && n=$((n+1))
done
echo $n`,
    [`${argv.join(' ')} `],
  );
  return Number(r.stdout.trim());
}

let sshd: Sshd;
let host: SshHost;

beforeAll(async () => {
  sshd = await startSshd();
  host = await SshHost.connect(sshd.target());
}, T);

afterAll(async () => {
  host?.close();
  closeAllHosts();
  await sshd?.stop();
}, T);

describe('connect', () => {
  it('reports the fingerprint of the key the server presented (as ssh-keygen prints it)', () => {
    expect(host.hostKeyFingerprint).toBe(sshd.hostKeyFingerprint);
    expect(host.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(host.closed).toBe(false);
  });

  it('accepts a SHA256 fingerprint pin as well as a key line', { timeout: T }, async () => {
    const h = await SshHost.connect(sshd.target({ hostKey: sshd.hostKeyFingerprint }));
    try {
      expect((await h.exec(['echo', 'ok'])).stdout).toBe('ok\n');
    } finally {
      h.close();
    }
  });

  it('builds a target from a profile', () => {
    const p = parseProfile({
      host: '10.0.0.5',
      port: 2222,
      user: 'admin',
      auth: { identityFile: '/etc/ab-upgrade/id_ed25519' },
      hostKey: sshd.hostKeyFingerprint,
      slots: 'auto',
      data: { device: '/dev/vda4', mountPoint: '/srv' },
      release: { source: 'debootstrap', suite: 'trixie' },
    });
    expect(targetFromProfile(p)).toEqual({
      host: '10.0.0.5',
      port: 2222,
      user: 'admin',
      identityFile: '/etc/ab-upgrade/id_ed25519',
      hostKey: sshd.hostKeyFingerprint,
      become: 'sudo',
    });
  });

  it('refuses a closed port with SshConnectError naming host:port', { timeout: T }, async () => {
    const other = await startSshd();
    const port = other.port;
    await other.stop(); // now nothing listens there
    const e = await rejectionOf(SshHost.connect(sshd.target({ port })));
    expect(e).toBeInstanceOf(SshConnectError);
    expect((e as Error).message).toContain(`127.0.0.1:${port}`);
  });

  it('reports an authentication failure as SshConnectError', { timeout: T }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-key-'));
    try {
      const key = join(dir, 'stranger');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key], { timeout: 10_000 });
      const e = await rejectionOf(SshHost.connect(sshd.target({ identityFile: key })));
      expect(e).toBeInstanceOf(SshConnectError);
      expect((e as Error).message).toMatch(/Authentication failed for .*@127\.0\.0\.1:\d+/);
      // Never leak the key material.
      expect((e as Error).message).not.toMatch(/PRIVATE KEY/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports an unreadable identity file without its contents', { timeout: T }, async () => {
    const e = await rejectionOf(SshHost.connect(sshd.target({ identityFile: '/nonexistent/key' })));
    expect(e).toBeInstanceOf(SshConnectError);
    expect((e as Error).message).toContain('/nonexistent/key');
  });
});

describe('host key pinning', () => {
  let other: Sshd;
  beforeAll(async () => {
    // "The same host, reinstalled": same client key accepted, different host key.
    other = await startSshd({ identityFile: sshd.identityFile });
  }, T);
  afterAll(async () => {
    await other?.stop();
  }, T);

  const accepted = (s: Sshd) => (s.logs().match(/Accepted publickey/g) ?? []).length;

  it('the other sshd really accepts our client key (control)', { timeout: T }, async () => {
    const h = await SshHost.connect(other.target());
    try {
      expect(h.hostKeyFingerprint).toBe(other.hostKeyFingerprint);
      expect(h.hostKeyFingerprint).not.toBe(sshd.hostKeyFingerprint);
    } finally {
      h.close();
    }
  });

  for (const form of ['key line', 'fingerprint'] as const) {
    it(`refuses a changed host key (pinned as ${form}) before authenticating`, { timeout: T }, async () => {
      const before = accepted(other);
      const pin = form === 'key line' ? sshd.hostKeyLine : sshd.hostKeyFingerprint;
      const e = await rejectionOf(SshHost.connect(other.target({ hostKey: pin })));
      expect(e).toBeInstanceOf(HostKeyMismatchError);
      const m = e as HostKeyMismatchError;
      expect(m.presented).toBe(other.hostKeyFingerprint);
      expect(m.expected).toBe(sshd.hostKeyFingerprint);
      expect(m.message).toContain(other.hostKeyFingerprint);
      expect(m.message).toContain(sshd.hostKeyFingerprint);
      expect(m.message).toContain(`127.0.0.1:${other.port}`);
      // No authentication happened, so no command can have run.
      await new Promise((r) => setTimeout(r, 200));
      expect(accepted(other)).toBe(before);
    });
  }

  it('refuses when the server has no key of the pinned type, naming what it presented', { timeout: T }, async () => {
    const rsaOnly = await startSshd({ hostKeyTypes: ['rsa'], identityFile: sshd.identityFile });
    try {
      const e = await rejectionOf(SshHost.connect(rsaOnly.target({ hostKey: sshd.hostKeyLine })));
      expect(e).toBeInstanceOf(HostKeyMismatchError);
      expect((e as HostKeyMismatchError).presented).toBe(rsaOnly.hostKeyFingerprint);
      expect((e as HostKeyMismatchError).expected).toBe(sshd.hostKeyFingerprint);
    } finally {
      await rsaOnly.stop();
    }
  });

  it('asks a multi-key server for the pinned key type', { timeout: T }, async () => {
    const multi = await startSshd({ hostKeyTypes: ['ed25519', 'rsa', 'ecdsa'], identityFile: sshd.identityFile });
    try {
      for (const k of multi.hostKeys) {
        const h = await SshHost.connect(multi.target({ hostKey: k.line }));
        try {
          expect(h.hostKeyFingerprint).toBe(k.fingerprint);
          expect((await h.exec(['true'])).exitCode).toBe(0);
        } finally {
          h.close();
        }
      }
    } finally {
      await multi.stop();
    }
  });
});

describe('exec', () => {
  it('returns exit code 0 with stdout and stderr captured separately', { timeout: T }, async () => {
    const r = await host.exec(['sh', '-c', 'echo out; echo err >&2; echo out2']);
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.timedOut).toBe(false);
    expect(r.stdout).toBe('out\nout2\n');
    expect(r.stderr).toBe('err\n');
    expect(r.command).toBe("sh -c 'echo out; echo err >&2; echo out2'");
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('throws CommandError on exit code 3 with the stderr tail in the message', { timeout: T }, async () => {
    const e = await rejectionOf(host.exec(['sh', '-c', 'echo partial; echo "it broke" >&2; exit 3']));
    expect(e).toBeInstanceOf(CommandError);
    const ce = e as CommandError;
    expect(ce.result.exitCode).toBe(3);
    expect(ce.result.stdout).toBe('partial\n');
    expect(ce.message).toMatch(/^Command failed with exit code 3: sh -c /);
    expect(ce.message).toContain('it broke');
  });

  it('returns exit code 3 without throwing when check is false', { timeout: T }, async () => {
    const r = await host.exec(['sh', '-c', 'exit 3'], { check: false });
    expect(r.exitCode).toBe(3);
  });

  it('reports a command killed by a signal with exitCode null and the signal name', { timeout: T }, async () => {
    const r = await host.exec(['sh', '-c', 'kill -TERM $$'], { check: false });
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGTERM');
    const e = await rejectionOf(host.exec(['sh', '-c', 'kill -TERM $$']));
    expect((e as CommandError).message).toMatch(/killed by signal SIGTERM: sh -c/);
  });

  it('feeds stdin (string, Buffer and stream) and sends EOF when there is none', { timeout: T }, async () => {
    expect((await host.exec(['cat'], { stdin: 'hello\n' })).stdout).toBe('hello\n');
    expect((await host.exec(['wc', '-c'], { stdin: Buffer.alloc(300_000, 1) })).stdout.trim()).toBe('300000');
    const stream = Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    expect((await host.exec(['cat'], { stdin: stream })).stdout).toBe('abc');
    // No stdin: cat sees EOF at once instead of hanging.
    expect((await host.exec(['cat'], { timeoutMs: 10_000 })).stdout).toBe('');
  });

  it('keeps several MB of stdout and stderr intact', { timeout: T }, async () => {
    const r = await host.exec([
      'sh',
      '-c',
      'yes 0123456789abcdef | head -c 6000000; yes EEEE | head -c 3000000 >&2; yes 0123456789abcdef | head -c 2000000',
    ]);
    const line = '0123456789abcdef\n';
    const expectedOut = line.repeat(Math.ceil(6_000_000 / line.length)).slice(0, 6_000_000) +
      line.repeat(Math.ceil(2_000_000 / line.length)).slice(0, 2_000_000);
    expect(r.stdout.length).toBe(8_000_000);
    expect(r.stdout === expectedOut).toBe(true);
    expect(r.stderr.length).toBe(3_000_000);
    expect(r.stderr === 'EEEE\n'.repeat(600_000)).toBe(true);
  });

  it('keeps the tail beyond maxBuffer and streams every stdout chunk', { timeout: T }, async () => {
    let streamed = 0;
    const chunks: Buffer[] = [];
    const r = await host.exec(['seq', '1', '200000'], {
      maxBuffer: 100,
      onStdoutChunk: (c) => {
        streamed += c.length;
        chunks.push(c);
      },
    });
    expect(r.stdout.length).toBe(100);
    expect(r.stdout.endsWith('199999\n200000\n')).toBe(true);
    const full = Buffer.concat(chunks).toString();
    expect(streamed).toBe(full.length);
    expect(full.split('\n').length - 1).toBe(200_000);
  });

  it('delivers hostile argv elements to the host byte for byte (exec)', { timeout: T }, async () => {
    rmSync('/tmp/ab-upgrade-pwned', { force: true });
    const r = await host.exec(['printf', '%s\\0', ...HOSTILE]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
    const bytes = await host.exec(['sh', '-c', 'printf "%s" "$1" | od -An -tx1 | tr -d " \\n"', 'sh', 'ünï\n\'$']);
    expect(bytes.stdout).toBe(Buffer.from('ünï\n\'$').toString('hex'));
    // None of the $(...), `...` or ; payloads ran.
    expect((await host.exec(['test', '-e', '/tmp/ab-upgrade-pwned'], { check: false })).exitCode).toBe(1);
  });

  it('delivers hostile script() args as $1..$n verbatim, with $0 = ab-upgrade', { timeout: T }, async () => {
    const r = await host.script('printf "%s\\0" "$0" "$#" "$@"', HOSTILE);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(['ab-upgrade', String(HOSTILE.length), ...HOSTILE]);
    // The script text itself may hold any quoting.
    const body = `printf '%s\\n' "it's" '"q"' "\\$HOME" 'a\\b'; echo "$1"`;
    expect((await host.script(body, ["x'y"])).stdout).toBe(`it's\n"q"\n$HOME\na\\b\nx'y\n`);
    expect((await host.exec(['test', '-e', '/tmp/ab-upgrade-pwned'], { check: false })).exitCode).toBe(1);
  });

  it('refuses NUL bytes and assignment-like command names before sending anything', { timeout: T }, async () => {
    await expect(host.exec(['echo', 'a\0b'])).rejects.toThrow(/NUL byte/);
    await expect(host.script('echo', ['\0'])).rejects.toThrow(/NUL byte/);
    await expect(host.exec(['FOO=1', 'true'])).rejects.toThrow(/must not contain "="/);
    await expect(host.exec([])).rejects.toThrow(TypeError);
  });

  it('wraps commands in sudo -n -- when become is sudo', { timeout: T }, async () => {
    const h = await SshHost.connect(sshd.target({ become: 'sudo' }));
    try {
      const hasSudo = (await host.exec(['sh', '-c', 'command -v sudo'], { check: false })).exitCode === 0;
      const p = h.exec(['id', '-u']);
      if (hasSudo) {
        const r = await p;
        expect(r.command).toBe('sudo -n -- id -u');
        expect(r.stdout.trim()).toBe('0');
        const s = await h.script('id -u; echo "$1"', ['a b']);
        expect(s.command).toBe("sudo -n -- sh -c 'id -u; echo \"$1\"' ab-upgrade 'a b'");
        expect(s.stdout).toBe('0\na b\n');
      } else {
        const e = (await rejectionOf(p)) as CommandError;
        expect(e.result.command).toBe('sudo -n -- id -u');
        expect(e.result.exitCode).toBe(127);
        expect(e.result.stderr).toMatch(/sudo/);
      }
    } finally {
      h.close();
    }
  });
});

describe('timeouts and aborts', () => {
  it('kills a command at its timeout: timedOut, exitCode null, fast, and the process is gone', { timeout: T }, async () => {
    const t0 = Date.now();
    const e = await rejectionOf(host.exec(['sleep', '30.25'], { timeoutMs: 500 }));
    const elapsed = Date.now() - t0;
    expect(e).toBeInstanceOf(CommandError);
    const r = (e as CommandError).result;
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect((e as CommandError).message).toBe('Command timed out after 500ms: sleep 30.25');
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(6_000);
    expect(await countProcs(host, ['sleep', '30.25'])).toBe(0);
  });

  it('kills the whole process tree of a timed-out script', { timeout: T }, async () => {
    const e = await rejectionOf(
      host.script('sleep 30.5 & sleep 30.5 & (sleep 30.5; echo never) & wait', [], { timeoutMs: 500 }),
    );
    expect((e as CommandError).result.timedOut).toBe(true);
    expect(await countProcs(host, ['sleep', '30.5'])).toBe(0);
  });

  it('returns the timed-out result instead of throwing when check is false', { timeout: T }, async () => {
    const r = await host.exec(['sh', '-c', 'echo started; sleep 30'], { timeoutMs: 500, check: false });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.stdout).toBe('started\n');
  });

  it('kills a command when its AbortSignal fires and rejects with the abort reason', { timeout: T }, async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 300);
    const e = await rejectionOf(host.exec(['sleep', '30.75'], { signal: ac.signal }));
    expect((e as Error).name).toBe('AbortError');
    expect(Date.now() - t0).toBeLessThan(6_000);
    expect(await countProcs(host, ['sleep', '30.75'])).toBe(0);

    const reason = new Error('cancelled by the workflow');
    const ac2 = new AbortController();
    setTimeout(() => ac2.abort(reason), 200);
    await expect(host.exec(['sleep', '30.75'], { signal: ac2.signal, check: false })).rejects.toBe(reason);
  });

  it('does not run anything when the signal is already aborted', { timeout: T }, async () => {
    const marker = `/tmp/ab-upgrade-aborted-${process.pid}`;
    await host.exec(['rm', '-f', marker]);
    const ac = new AbortController();
    ac.abort();
    await expect(host.exec(['touch', marker], { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect((await host.exec(['test', '-e', marker], { check: false })).exitCode).toBe(1);
  });

  it('keeps the connection usable after timeouts and aborts', { timeout: T }, async () => {
    expect((await host.exec(['echo', 'still here'])).stdout).toBe('still here\n');
  });
});

describe('channel bound', () => {
  it('runs 12 parallel execs, at most 4 at a time, all succeeding', { timeout: T }, async () => {
    const dir = (await host.exec(['mktemp', '-d'])).stdout.trim();
    try {
      const body = `d=$1; i=$2
touch "$d/run.$i"
sleep 0.3
ls "$d" | grep -c '^run\\.' > "$d/seen.$i"
rm "$d/run.$i"
echo "$i"`;
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => host.script(body, [dir, String(i)], { timeoutMs: 20_000 })),
      );
      expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
      const seen = (await host.script('cat "$1"/seen.*', [dir])).stdout.trim().split('\n').map(Number);
      expect(seen).toHaveLength(12);
      expect(Math.max(...seen)).toBeLessThanOrEqual(4);
      expect(Math.max(...seen)).toBeGreaterThanOrEqual(2);
    } finally {
      await host.exec(['rm', '-rf', dir]);
    }
  });

  it('honours maxChannels: queued commands wait, an aborted queued one never runs', { timeout: T }, async () => {
    const h = await SshHost.connect(sshd.target({ maxChannels: 1 }));
    const marker = `/tmp/ab-upgrade-queued-${process.pid}`;
    rmSync(marker, { force: true });
    try {
      const t0 = Date.now();
      const first = h.exec(['sleep', '1']);
      const ac = new AbortController();
      const aborted = h.exec(['touch', marker], { signal: ac.signal });
      // Queued behind `sleep 1`; its 500 ms timeout only starts once it has the channel.
      const waiting = h.exec(['echo', 'after'], { timeoutMs: 500 });
      ac.abort();
      await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
      expect((await first).exitCode).toBe(0);
      const w = await waiting;
      expect(w.stdout).toBe('after\n');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
      expect((await h.exec(['test', '-e', marker], { check: false })).exitCode).toBe(1);
    } finally {
      h.close();
      rmSync(marker, { force: true });
    }
  });
});

describe('upload', () => {
  let dir: string;
  beforeAll(async () => {
    dir = (await host.exec(['mktemp', '-d'])).stdout.trim();
  }, T);
  afterAll(async () => {
    if (dir && !host.closed) await host.exec(['rm', '-rf', dir]);
  }, T);

  it('uploads a few MB from a Buffer; sha256 and mode match on the host; no temp file left', { timeout: T }, async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const path = `${dir}/blob with 'quotes' $(x).bin`;
    let progress = 0;
    await host.upload(path, data, { mode: '0640', onProgress: (n) => (progress = n) });
    expect(progress).toBe(data.length);
    const sum = (await host.exec(['sha256sum', path])).stdout.split(' ')[0];
    expect(sum).toBe(createHash('sha256').update(data).digest('hex'));
    expect((await host.exec(['stat', '-c', '%a %s', path])).stdout.trim()).toBe(`640 ${data.length}`);
    expect((await host.exec(['ls', '-A', dir])).stdout).toBe(`blob with 'quotes' $(x).bin\n`);
  });

  it('uploads from a stream and replaces an existing file', { timeout: T }, async () => {
    const path = `${dir}/streamed`;
    await host.upload(path, Buffer.from('old content'));
    const parts = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    await host.upload(path, Readable.from(parts));
    const want = createHash('sha256').update(Buffer.concat(parts)).digest('hex');
    expect((await host.exec(['sha256sum', path])).stdout.split(' ')[0]).toBe(want);
    expect((await host.exec(['stat', '-c', '%a', path])).stdout.trim()).toBe('644');
  });

  it('fails cleanly into a missing directory and leaves nothing behind', { timeout: T }, async () => {
    const e = await rejectionOf(host.upload(`${dir}/missing/file`, Buffer.from('x')));
    expect(e).toBeInstanceOf(CommandError);
    expect((await host.exec(['test', '-e', `${dir}/missing`], { check: false })).exitCode).toBe(1);
  });

  it('rejects relative paths and bad modes', async () => {
    await expect(host.upload('relative/path', Buffer.from('x'))).rejects.toThrow(TypeError);
    await expect(host.upload(`${dir}/f`, Buffer.from('x'), { mode: 'u+x' })).rejects.toThrow(TypeError);
  });
});

describe('withHost', () => {
  it('reuses one connection across calls and replaces it once closed', { timeout: T }, async () => {
    const target = sshd.target();
    const a = await withHost(target, async (h) => h);
    const b = await withHost(target, async (h) => {
      expect((await h.exec(['echo', 'pooled'])).stdout).toBe('pooled\n');
      return h;
    });
    expect(b).toBe(a);
    // Concurrent first uses share one connection too.
    const [c1, c2] = await Promise.all([withHost(target, async (h) => h), withHost(target, async (h) => h)]);
    expect(c1).toBe(a);
    expect(c2).toBe(a);

    a.close();
    expect(a.closed).toBe(true);
    const c = await withHost(target, async (h) => {
      expect((await h.exec(['echo', 'fresh'])).stdout).toBe('fresh\n');
      return h;
    });
    expect(c).not.toBe(a);
    expect(c.closed).toBe(false);

    closeAllHosts();
    expect(await until(() => c.closed, 5_000)).toBe(true);
  });

  it('propagates connect errors and does not cache them', { timeout: T }, async () => {
    const bad = sshd.target({ hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
    await expect(withHost(bad, async () => 1)).rejects.toBeInstanceOf(HostKeyMismatchError);
    await expect(withHost(bad, async () => 1)).rejects.toBeInstanceOf(HostKeyMismatchError);
    expect(await withHost(sshd.target(), async (h) => (await h.exec(['echo', 'ok'])).stdout)).toBe('ok\n');
    closeAllHosts();
  });
});

describe('dropped connection', () => {
  let lone: Sshd;
  beforeAll(async () => {
    lone = await startSshd();
  }, T);
  afterAll(async () => {
    await lone?.stop();
  }, T);

  it('fails a running command as "exit status unknown" and the process survives', { timeout: T }, async () => {
    const h = await SshHost.connect(lone.target());
    const t0 = Date.now();
    const running = h.exec(['sleep', '29.125']);
    const queuedOrSecond = h.exec(['sh', '-c', 'echo x; sleep 29.125'], { check: false });
    // Wait until both sessions exist on the host, then kill the per-connection sshd processes.
    expect(await until(async () => (await countLocalProcs('sleep 29.125')) >= 2, 10_000)).toBe(true);
    expect(lone.killConnections()).toBeGreaterThan(0);

    for (const p of [running, queuedOrSecond]) {
      const e = await rejectionOf(p);
      expect(e).toBeInstanceOf(CommandError);
      const r = (e as CommandError).result as ExecResult;
      expect(r.exitCode).toBeNull();
      expect(r.timedOut).toBe(false);
      expect((e as Error).message).toMatch(/^Connection lost while running .*: exit status unknown/);
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(await until(() => h.closed, 5_000)).toBe(true);

    // The dead host refuses new work without trying.
    const e = await rejectionOf(h.exec(['true']));
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).result.exitCode).toBeNull();
    expect((e as Error).message).toMatch(/not started/);
  });

  it('detects a silent peer with keepalives and fails the running command', { timeout: T }, async () => {
    const h = await SshHost.connect(lone.target({ keepaliveIntervalMs: 200 }));
    const t0 = Date.now();
    const running = h.exec(['sleep', '29.25']);
    expect(await until(() => countLocalProcs('sleep 29.25') >= 1, 10_000)).toBe(true);
    expect(lone.freezeConnections()).toBeGreaterThan(0);
    const e = await rejectionOf(running);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).result.exitCode).toBeNull();
    expect((e as Error).message).toMatch(/^Connection lost while running sleep 29\.25: exit status unknown/);
    // 3 unanswered keepalives at 200 ms, not the 30 s of the command.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(h.closed).toBe(true);
    lone.killConnections();
  });

  it('withHost replaces a pooled connection that died', { timeout: T }, async () => {
    const target = lone.target();
    const a = await withHost(target, async (h) => h);
    lone.killConnections();
    expect(await until(() => a.closed, 10_000)).toBe(true);
    const b = await withHost(target, async (h) => {
      expect((await h.exec(['echo', 'back'])).stdout).toBe('back\n');
      return h;
    });
    expect(b).not.toBe(a);
    closeAllHosts();
  });
});

/** Count processes running `cmdline` (alone or as the end of an `sh -c`) on this machine, which is the test host. */
function countLocalProcs(cmdline: string): number {
  const out = execFileSync('sh', ['-c', `for p in /proc/[0-9]*; do tr '\\0' ' ' < "$p/cmdline" 2>/dev/null; echo; done`], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return out.split('\n').filter((l) => l === `${cmdline} ` || l.startsWith(`sh -c echo x; ${cmdline}`)).length;
}
