// activities/power.ts against local fakes: a fake `ipmitool` first on PATH, Redfish BMCs served
// by node:http / node:https (self-signed certificate made with openssl) on 127.0.0.1, and a fake
// QMP monitor on a unix socket. No VM, no real BMC; every call is bounded by a short timeout.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  IpmiPowerDriver,
  PowerError,
  QmpPowerDriver,
  RedfishPowerDriver,
  powerDriverFor,
  type PowerDriver,
} from '../../activities/power.js';
import { freePort } from '../../lib/free-port.js';
import { parseProfile, type PowerConfig } from '../../lib/profile.js';

const PASSWORD = 'S3cr3t-Pa55w0rd-do-not-leak';

let dir: string;
let passwordFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-power-'));
  passwordFile = join(dir, 'bmc.pw');
  writeFileSync(passwordFile, PASSWORD + '\n', { mode: 0o600 });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the rejection of `p` (fails the test if it resolves). */
async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

// =============================================================================================
// IPMI

describe('IpmiPowerDriver (fake ipmitool first on PATH)', () => {
  let binDir: string;
  let logFile: string;
  let modeFile: string;
  let savedPath: string | undefined;

  // Behaves like ipmitool for `chassis power ...`: needs a readable -f file, prints what the real
  // one prints. It records argv (one per line), its stdin and its environment, each after a marker.
  // `mode` picks the behaviour: on | off | fail | hang.
  const FAKE_IPMITOOL = `#!/bin/bash
here="$(dirname "$0")"
log="$here/ipmitool.log"
mode="$(cat "$here/mode" 2>/dev/null || echo on)"
{
  echo "--- call"
  echo "--- argv"
  for a in "$@"; do printf '%s\\n' "$a"; done
  echo "--- stdin"
  cat
  echo
  echo "--- env"
  env
} >> "$log"
pwfile=""
prev=""
for a in "$@"; do
  if [ "$prev" = "-f" ]; then pwfile="$a"; fi
  prev="$a"
done
if [ -z "$pwfile" ] || [ ! -r "$pwfile" ]; then
  echo "Unable to read password from file $pwfile" >&2
  exit 1
fi
case "$mode" in
  fail)
    echo "Error: Unable to establish IPMI v2 / RMCP+ session" >&2
    exit 1 ;;
  hang)
    exec sleep 30 ;;
esac
action="\${@: -1}"
case "$action" in
  status) if [ "$mode" = off ]; then echo "Chassis Power is off"; else echo "Chassis Power is on"; fi ;;
  reset) echo "Chassis Power Control: Reset" ;;
  off) echo "Chassis Power Control: Down/Off" ;;
  on) echo "Chassis Power Control: Up/On" ;;
  *) echo "Invalid chassis power command: $action" >&2; exit 1 ;;
esac
`;

  interface IpmiCall {
    argv: string[];
    stdin: string;
    env: string;
  }

  function calls(): IpmiCall[] {
    if (!existsSync(logFile)) return [];
    return readFileSync(logFile, 'utf8')
      .split('--- call\n')
      .slice(1)
      .map((chunk) => {
        const argvAt = chunk.indexOf('--- argv\n') + '--- argv\n'.length;
        const stdinAt = chunk.indexOf('--- stdin\n');
        const envAt = chunk.indexOf('--- env\n');
        return {
          argv: chunk.slice(argvAt, stdinAt).split('\n').filter((l) => l !== ''),
          stdin: chunk.slice(stdinAt + '--- stdin\n'.length, envAt).trim(),
          env: chunk.slice(envAt + '--- env\n'.length),
        };
      });
  }

  function setMode(mode: 'on' | 'off' | 'fail' | 'hang'): void {
    writeFileSync(modeFile, mode);
  }

  beforeAll(() => {
    binDir = join(dir, 'bin');
    execFileSync('mkdir', ['-p', binDir]);
    const tool = join(binDir, 'ipmitool');
    writeFileSync(tool, FAKE_IPMITOOL);
    chmodSync(tool, 0o755);
    logFile = join(binDir, 'ipmitool.log');
    modeFile = join(binDir, 'mode');
    savedPath = process.env.PATH;
    process.env.PATH = `${binDir}:${savedPath ?? '/usr/bin:/bin'}`;
  });
  afterAll(() => {
    process.env.PATH = savedPath;
  });
  beforeEach(() => {
    rmSync(logFile, { force: true });
    setMode('on');
  });

  const driver = (extra: Partial<ConstructorParameters<typeof IpmiPowerDriver>[0]> = {}) =>
    new IpmiPowerDriver({ address: '10.0.0.21', user: 'ADMIN', passwordFile, timeoutMs: 5_000, ...extra });

  const expectedArgv = (action: string, iface = 'lanplus') =>
    ['-I', iface, '-H', '10.0.0.21', '-U', 'ADMIN', '-f', passwordFile, 'chassis', 'power', action];

  it('runs `ipmitool -I lanplus -H .. -U .. -f <file> chassis power reset|off|on|status` (the one found on PATH)', async () => {
    const d = driver();
    await d.reset();
    await d.powerOff();
    await d.powerOn();
    expect(await d.status()).toBe('on');
    expect(calls().map((c) => c.argv)).toEqual([expectedArgv('reset'), expectedArgv('off'), expectedArgv('on'), expectedArgv('status')]);
    expect(d.argv('reset')).toEqual(expectedArgv('reset'));
  });

  it('never puts the password on argv, in the environment or on stdin', async () => {
    const d = driver();
    await d.reset();
    expect(await d.status()).toBe('on');
    const cs = calls();
    expect(cs).toHaveLength(2);
    for (const c of cs) {
      expect(c.argv.join(' ')).not.toContain(PASSWORD);
      expect(c.argv).not.toContain('-P'); // ipmitool's password-on-argv option
      expect(c.argv).not.toContain('-E'); // ...and its password-from-$IPMI_PASSWORD option
      expect(c.env).toMatch(/^PATH=/m); // the recording works...
      expect(c.env).not.toContain(PASSWORD); // ...and holds no password
      expect(c.env).not.toMatch(/^IPMI_PASSWORD=/m);
      expect(c.stdin).toBe('');
    }
    expect(readFileSync(logFile, 'utf8')).not.toContain(PASSWORD);
  });

  it('honours interface: lan and an explicit ipmitool binary', async () => {
    const d = new IpmiPowerDriver({ address: '10.0.0.21', user: 'ADMIN', passwordFile, interface: 'lan', ipmitool: join(binDir, 'ipmitool') });
    await d.reset();
    expect(calls().map((c) => c.argv)).toEqual([expectedArgv('reset', 'lan')]);
  });

  it('parses `Chassis Power is off`', async () => {
    setMode('off');
    expect(await driver().status()).toBe('off');
  });

  it('a failing ipmitool (exit 1 + stderr) gives a PowerError naming the action, the exit code and stderr', async () => {
    setMode('fail');
    const err = await rejectionOf(driver().reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.name).toBe('PowerError');
    expect(err.message).toContain('ipmitool chassis power reset failed with exit code 1');
    expect(err.message).toContain('Unable to establish IPMI v2 / RMCP+ session');
    expect(err.message).not.toContain(PASSWORD);
    // status() does not throw: an unreachable BMC is 'unknown'.
    expect(await driver().status()).toBe('unknown');
  });

  it('an unreadable password file is reported the way ipmitool reports it', async () => {
    const err = await rejectionOf(driver({ passwordFile: join(dir, 'missing.pw') }).powerOff());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(/chassis power off failed with exit code 1: Unable to read password from file/);
  });

  it('a hanging ipmitool is killed at timeoutMs', async () => {
    setMode('hang');
    const t0 = Date.now();
    const err = await rejectionOf(driver({ timeoutMs: 300 }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe('ipmitool chassis power reset: timed out after 300 ms');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('a missing ipmitool binary is a PowerError, not a crash', async () => {
    const err = await rejectionOf(driver({ ipmitool: join(dir, 'no-such-ipmitool') }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(/ENOENT/);
  });
});

// =============================================================================================
// Redfish

interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Responder = (req: SeenRequest) => { status: number; body?: unknown; text?: string } | 'hang';

/** A tiny Redfish BMC: records every request, answers with `respond`. */
function bmcHandler(seen: SeenRequest[], respond: () => Responder): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(r);
      const answer = respond()(r);
      if (answer === 'hang') return; // never answers (the client's timeout must fire)
      const text = answer.text ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
      res.writeHead(answer.status, answer.body !== undefined ? { 'Content-Type': 'application/json' } : { 'Content-Type': 'text/plain' });
      res.end(text);
    });
  };
}

/** A Redfish BMC's usual answers: 204 for the reset action, the system resource with PowerState. */
function normalBmc(powerState: string): Responder {
  return (r) => {
    if (r.method === 'POST' && r.url.endsWith('/Actions/ComputerSystem.Reset')) return { status: 204 };
    if (r.method === 'GET' && /^\/(?:[^/]+\/)*redfish\/v1\/Systems\/[^/]+$/.test(r.url)) {
      return { status: 200, body: { '@odata.id': r.url, Id: r.url.split('/').pop(), PowerState: powerState } };
    }
    return { status: 404, body: { error: { code: 'Base.1.0.ResourceMissingAtURI', message: `no ${r.url}` } } };
  };
}

async function listen(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

async function closeServer(server: http.Server | https.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('RedfishPowerDriver (local node:http BMC)', () => {
  const seen: SeenRequest[] = [];
  let responder: Responder = normalBmc('On');
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    server = http.createServer(bmcHandler(seen, () => responder));
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  afterAll(async () => {
    await closeServer(server);
  });
  beforeEach(() => {
    seen.length = 0;
    responder = normalBmc('On');
    writeFileSync(passwordFile, PASSWORD + '\n');
  });

  const driver = (extra: Partial<ConstructorParameters<typeof RedfishPowerDriver>[0]> = {}) =>
    new RedfishPowerDriver({ url: base, user: 'root', passwordFile, systemId: 'System.Embedded.1', timeoutMs: 5_000, allowHttp: true, ...extra });

  it('POSTs ComputerSystem.Reset with ResetType ForceRestart / ForceOff / On', async () => {
    const d = driver();
    await d.reset();
    await d.powerOff();
    await d.powerOn();
    expect(seen.map((r) => [r.method, r.url, JSON.parse(r.body) as unknown])).toEqual([
      ['POST', '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset', { ResetType: 'ForceRestart' }],
      ['POST', '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset', { ResetType: 'ForceOff' }],
      ['POST', '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset', { ResetType: 'On' }],
    ]);
    for (const r of seen) {
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
      expect(r.headers.accept).toBe('application/json');
    }
  });

  it('sends Basic auth built from the user and the password FILE content (read at call time, trailing newline dropped)', async () => {
    await driver().reset();
    expect(seen[0]!.headers.authorization).toBe(basic('root', PASSWORD));
    // A rotated password file is picked up by the next call, no restart needed.
    writeFileSync(passwordFile, 'rotated-pw\r\n');
    await driver().reset();
    expect(seen[1]!.headers.authorization).toBe(basic('root', 'rotated-pw'));
    // The password travels only in the Authorization header.
    for (const r of seen) {
      expect(r.url).not.toContain(PASSWORD);
      expect(r.body).not.toContain(PASSWORD);
    }
  });

  it('reads the power state from GET /redfish/v1/Systems/<id>', async () => {
    expect(await driver().status()).toBe('on');
    expect(seen.map((r) => [r.method, r.url])).toEqual([['GET', '/redfish/v1/Systems/System.Embedded.1']]);
    expect(seen[0]!.body).toBe('');
    expect(seen[0]!.headers.authorization).toBe(basic('root', PASSWORD));
    responder = normalBmc('Off');
    expect(await driver().status()).toBe('off');
    responder = normalBmc('PoweringOn');
    expect(await driver().status()).toBe('unknown');
    responder = () => ({ status: 401, body: { error: { message: 'unauthorized' } } });
    expect(await driver().status()).toBe('unknown');
  });

  it('defaults the system id to 1, URL-encodes it, and keeps a path prefix of the base URL', async () => {
    await new RedfishPowerDriver({ url: base, user: 'root', passwordFile, allowHttp: true }).reset();
    await driver({ systemId: 'node 1/a' }).reset();
    await driver({ url: `${base}/bmc7/` }).status();
    expect(seen.map((r) => r.url)).toEqual([
      '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset',
      '/redfish/v1/Systems/node%201%2Fa/Actions/ComputerSystem.Reset',
      '/bmc7/redfish/v1/Systems/System.Embedded.1',
    ]);
  });

  it('HTTP 401 is a PowerError naming the reset type, the status and the Redfish message', async () => {
    responder = () => ({
      status: 401,
      body: {
        error: {
          code: 'Base.1.0.GeneralError',
          message: 'A general error has occurred.',
          '@Message.ExtendedInfo': [{ MessageId: 'Base.1.0.AccessDenied', Message: 'Invalid username or password.' }],
        },
      },
    });
    const err = await rejectionOf(driver().reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe('Redfish ForceRestart: HTTP 401: A general error has occurred.: Invalid username or password.');
    expect(err.message).not.toContain(PASSWORD);
  });

  it('HTTP 500 with a non-JSON body is a PowerError quoting the body', async () => {
    responder = () => ({ status: 500, text: 'Internal Server Error: BMC busy' });
    const err = await rejectionOf(driver().powerOff());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe('Redfish ForceOff: HTTP 500: Internal Server Error: BMC busy');
  });

  it('a BMC that never answers is a PowerError at timeoutMs', async () => {
    responder = () => 'hang';
    const t0 = Date.now();
    const err = await rejectionOf(driver({ timeoutMs: 300 }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(/^Redfish POST \/redfish\/v1\/Systems\/System.Embedded.1\/Actions\/ComputerSystem.Reset: timed out after 300 ms$/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await driver({ timeoutMs: 300 }).status()).toBe('unknown');
  });

  it('a missing password file fails before anything is sent', async () => {
    const err = await rejectionOf(driver({ passwordFile: join(dir, 'missing.pw') }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe(`Redfish: cannot read passwordFile ${join(dir, 'missing.pw')}: ENOENT`);
    expect(seen).toHaveLength(0);
  });

  it('http:// is refused unless allowHttp, before the password file is read or anything is sent', async () => {
    for (const allowHttp of [false, undefined]) {
      const err = await rejectionOf(driver({ allowHttp, passwordFile: join(dir, 'missing.pw') }).reset());
      expect(err).toBeInstanceOf(PowerError);
      expect(err.message).toMatch(/^Redfish: refusing http:\/\/127\.0\.0\.1:\d+: the password would travel in clear \(use https, or allowHttp: true\)$/);
      expect(await driver({ allowHttp }).status()).toBe('unknown');
    }
    expect(seen).toHaveLength(0);
  });

  it('a URL with credentials in it is refused without repeating them', async () => {
    const url = base.replace('http://', 'http://root:url-pw-hunter2@');
    const err = await rejectionOf(driver({ url }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe('Redfish: the BMC url must not contain a user name or password (use user and passwordFile)');
    expect(seen).toHaveLength(0);
  });

  it('a password file of more than one line (a private key) is refused, naming the file and none of its content', async () => {
    const key = join(dir, 'id_ed25519');
    const lines = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', '-----END OPENSSH PRIVATE KEY-----'];
    writeFileSync(key, lines.join('\n') + '\n', { mode: 0o600 });
    const err = await rejectionOf(driver({ passwordFile: key }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe(`Redfish: passwordFile ${key} has 3 lines; it must hold the password alone, on one line`);
    for (const l of lines) expect(err.message).not.toContain(l);
    expect(seen).toHaveLength(0);
    // Two non-empty lines are enough to refuse; blank lines and a final CRLF are not.
    writeFileSync(passwordFile, 'first\nsecond\n');
    expect((await rejectionOf(driver().reset())).message).toMatch(/has 2 lines/);
    writeFileSync(passwordFile, `\n${PASSWORD}\r\n\n`);
    await driver().reset();
    expect(seen.at(-1)!.headers.authorization).toBe(basic('root', PASSWORD));
  });

  it('a BMC that refuses the connection is a PowerError naming it and the cause', async () => {
    const port = await freePort();
    const err = await rejectionOf(driver({ url: `http://127.0.0.1:${port}` }).reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(new RegExp(`^Redfish POST 127\\.0\\.0\\.1:${port}/redfish/v1/Systems/System\\.Embedded\\.1/Actions/ComputerSystem\\.Reset: ECONNREFUSED`));
  });
});

describe('RedfishPowerDriver over https with a self-signed certificate', () => {
  const seen: SeenRequest[] = [];
  let server: https.Server;
  let base: string;

  beforeAll(async () => {
    const key = join(dir, 'bmc-key.pem');
    const cert = join(dir, 'bmc-cert.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
      { stdio: 'ignore', timeout: 30_000 },
    );
    server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, bmcHandler(seen, () => normalBmc('On')));
    base = `https://127.0.0.1:${await listen(server)}`;
  });
  afterAll(async () => {
    if (server) await closeServer(server);
  });
  beforeEach(() => {
    seen.length = 0;
    writeFileSync(passwordFile, PASSWORD + '\n');
  });

  it('insecureTls: true accepts the self-signed certificate', async () => {
    const d = new RedfishPowerDriver({ url: base, user: 'root', passwordFile, insecureTls: true, timeoutMs: 5_000 });
    await d.reset();
    expect(await d.status()).toBe('on');
    expect(seen.map((r) => [r.method, r.url])).toEqual([
      ['POST', '/redfish/v1/Systems/1/Actions/ComputerSystem.Reset'],
      ['GET', '/redfish/v1/Systems/1'],
    ]);
    expect(seen[0]!.headers.authorization).toBe(basic('root', PASSWORD));
  });

  it('insecureTls: false (the default) refuses it, and the credentials never reach the server', async () => {
    for (const insecureTls of [false, undefined]) {
      const d = new RedfishPowerDriver({ url: base, user: 'root', passwordFile, timeoutMs: 5_000, ...(insecureTls === undefined ? {} : { insecureTls }) });
      const err = await rejectionOf(d.reset());
      expect(err).toBeInstanceOf(PowerError);
      expect(err.message).toMatch(/self[- ]signed certificate/i);
      expect(err.message).not.toContain(readFileSync(passwordFile, 'utf8').trim());
      expect(await d.status()).toBe('unknown');
    }
    expect(seen).toHaveLength(0);
  });
});

// =============================================================================================
// QMP

interface QmpServerOptions {
  /** Do not greet (a QEMU that is going away accepts but never speaks). */
  silent?: boolean;
  /** Error replies per command. */
  errors?: Record<string, string>;
  /** Close the connection instead of answering these (QEMU exiting under the lab's restart supervisor). */
  closeOn?: string[];
}

/** A fake QEMU monitor: greeting, qmp_capabilities, records each command per connection. */
class FakeQmp {
  readonly connections: string[][] = [];
  status = 'running';
  private readonly server: net.Server;

  constructor(
    readonly path: string,
    public opts: QmpServerOptions = {},
  ) {
    this.server = net.createServer((sock) => this.serve(sock));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => resolve());
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  all(): string[] {
    return this.connections.flat();
  }

  private serve(sock: net.Socket): void {
    const cmds: string[] = [];
    this.connections.push(cmds);
    const send = (o: unknown) => sock.write(JSON.stringify(o) + '\r\n');
    sock.on('error', () => undefined);
    if (this.opts.silent) return;
    send({ QMP: { version: { qemu: { micro: 0, minor: 2, major: 9 }, package: 'Debian 1:9.2.0' }, capabilities: ['oob'] } });
    let negotiated = false;
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { execute?: string };
        const cmd = String(msg.execute);
        cmds.push(cmd);
        if (this.opts.closeOn?.includes(cmd)) {
          sock.destroy();
          return;
        }
        const err = this.opts.errors?.[cmd];
        if (err) {
          send({ error: { class: 'GenericError', desc: err } });
          continue;
        }
        if (cmd === 'qmp_capabilities') {
          negotiated = true;
          send({ return: {} });
          continue;
        }
        if (!negotiated) {
          send({ error: { class: 'CommandNotFound', desc: 'Expecting capabilities negotiation with \'qmp_capabilities\'' } });
          continue;
        }
        const ts = { seconds: Math.floor(Date.now() / 1000), microseconds: 0 };
        switch (cmd) {
          case 'system_reset':
            // QEMU emits the RESET event before the reply: the client must skip events.
            send({ timestamp: ts, event: 'RESET', data: { guest: false, reason: 'host-qmp-system-reset' } });
            send({ return: {} });
            break;
          case 'stop':
            this.status = 'paused';
            send({ timestamp: ts, event: 'STOP' });
            send({ return: {} });
            break;
          case 'cont':
            this.status = 'running';
            send({ timestamp: ts, event: 'RESUME' });
            send({ return: {} });
            break;
          case 'query-status':
            send({ return: { status: this.status, singlestep: false, running: this.status === 'running' } });
            break;
          default:
            send({ error: { class: 'CommandNotFound', desc: `The command ${cmd} has not been found` } });
        }
      }
    });
  }
}

describe('QmpPowerDriver (fake QMP monitor on a unix socket)', () => {
  let qmp: FakeQmp;
  let socketPath: string;
  let n = 0;

  beforeEach(async () => {
    socketPath = join(dir, `qmp-${++n}.sock`);
    qmp = new FakeQmp(socketPath);
    await qmp.listen();
  });
  afterEach(async () => {
    await qmp.close();
  });

  const driver = (path = socketPath) => new QmpPowerDriver(path, { connectTimeoutMs: 2_000, commandTimeoutMs: 2_000 });

  it('reset() negotiates capabilities, then sends system_reset (skipping the RESET event)', async () => {
    await driver().reset();
    expect(qmp.connections).toEqual([['qmp_capabilities', 'system_reset']]);
  });

  it('powerOff() stops the vCPUs; status() reads query-status', async () => {
    const d = driver();
    expect(await d.status()).toBe('on');
    await d.powerOff();
    expect(await d.status()).toBe('off');
    expect(qmp.connections).toEqual([
      ['qmp_capabilities', 'query-status'],
      ['qmp_capabilities', 'stop'],
      ['qmp_capabilities', 'query-status'],
    ]);
  });

  it('powerOn() is system_reset + cont, then waits until query-status says running', async () => {
    qmp.status = 'paused';
    await driver().powerOn();
    expect(qmp.status).toBe('running');
    expect(qmp.connections[0]).toEqual(['qmp_capabilities', 'system_reset', 'cont']);
    expect(qmp.connections.slice(1)).toEqual([['qmp_capabilities', 'query-status']]);
  });

  it('status(): shutdown is off, an unknown run state is unknown', async () => {
    qmp.status = 'shutdown';
    expect(await driver().status()).toBe('off');
    qmp.status = 'inmigrate';
    expect(await driver().status()).toBe('unknown');
  });

  it('an error reply is a PowerError with QEMU\'s description', async () => {
    qmp.opts = { errors: { system_reset: 'Resetting the Virtual Machine is not supported' } };
    const err = await rejectionOf(driver().reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toBe('QMP system_reset: Resetting the Virtual Machine is not supported');
  });

  it('a monitor that closes the socket on system_reset (QEMU exiting under a restart supervisor) still counts as reset', async () => {
    qmp.opts = { closeOn: ['system_reset'] };
    await driver().reset();
    expect(qmp.connections).toEqual([['qmp_capabilities', 'system_reset']]);
    // ...but not for commands where a close means failure.
    qmp.opts = { closeOn: ['stop'] };
    const err = await rejectionOf(driver().powerOff());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(/QMP connection closed/);
  });

  it('a missing socket is a PowerError within connectTimeoutMs; status() is unknown', async () => {
    const missing = join(dir, 'no-such-qmp.sock');
    const d = new QmpPowerDriver(missing, { connectTimeoutMs: 500 });
    const t0 = Date.now();
    const err = await rejectionOf(d.reset());
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(new RegExp(`^QMP: cannot connect to ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*ENOENT`));
    expect(took).toBeGreaterThanOrEqual(400);
    expect(took).toBeLessThan(2_500);
    const t1 = Date.now();
    expect(await d.status()).toBe('unknown');
    expect(Date.now() - t1).toBeLessThan(2_500);
  });

  it('a monitor that accepts but never greets is bounded by connectTimeoutMs too', async () => {
    qmp.opts = { silent: true };
    const d = new QmpPowerDriver(socketPath, { connectTimeoutMs: 600 });
    const t0 = Date.now();
    const err = await rejectionOf(d.reset());
    expect(err).toBeInstanceOf(PowerError);
    expect(err.message).toMatch(/QMP: cannot connect to .*QMP greeting: timed out/);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(qmp.all()).toEqual([]); // nothing was ever sent without a greeting
  });
});

// =============================================================================================
// powerDriverFor

describe('powerDriverFor', () => {
  const pw = '/etc/ab-upgrade/bmc.pw';

  it('none → null', () => {
    expect(powerDriverFor({ driver: 'none' })).toBeNull();
  });

  it('qmp → QmpPowerDriver on the socket', () => {
    const d = powerDriverFor({ driver: 'qmp', socket: '/run/lab/vm1.qmp' });
    expect(d).toBeInstanceOf(QmpPowerDriver);
    expect((d as QmpPowerDriver).socketPath).toBe('/run/lab/vm1.qmp');
  });

  it('ipmi → IpmiPowerDriver with the profile\'s address, user, password file and interface', () => {
    const lanplus = powerDriverFor({ driver: 'ipmi', address: 'bmc1.example', user: 'ADMIN', passwordFile: pw, interface: 'lanplus' });
    expect(lanplus).toBeInstanceOf(IpmiPowerDriver);
    expect((lanplus as IpmiPowerDriver).argv('status')).toEqual(['-I', 'lanplus', '-H', 'bmc1.example', '-U', 'ADMIN', '-f', pw, 'chassis', 'power', 'status']);
    const lan = powerDriverFor({ driver: 'ipmi', address: '10.0.0.9', user: 'op', passwordFile: pw, interface: 'lan' }) as IpmiPowerDriver;
    expect(lan.argv('off')).toEqual(['-I', 'lan', '-H', '10.0.0.9', '-U', 'op', '-f', pw, 'chassis', 'power', 'off']);
  });

  it('redfish → RedfishPowerDriver', () => {
    const d = powerDriverFor({ driver: 'redfish', url: 'https://bmc.example', user: 'root', passwordFile: pw, systemId: '1', insecureTls: false, allowHttp: false });
    expect(d).toBeInstanceOf(RedfishPowerDriver);
  });

  /** The power section of an otherwise minimal profile, through the real parser (defaults applied). */
  function parsedPower(power: unknown): PowerConfig {
    return parseProfile({
      host: 'web3.example.net',
      auth: { identityFile: '/home/op/.ssh/id_ed25519' },
      hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
      slots: 'auto',
      data: { device: 'LABEL=data', mountPoint: '/srv/data' },
      release: { source: 'debootstrap', suite: 'trixie' },
      ...(power === undefined ? {} : { power }),
    }).power;
  }

  it('a profile without a power section gets no driver', () => {
    expect(powerDriverFor(parsedPower(undefined))).toBeNull();
  });

  it('parsed profiles drive the right backends (defaults: lanplus, system 1, verified TLS)', async () => {
    const binDir = join(dir, 'pdf-bin');
    execFileSync('mkdir', ['-p', binDir]);
    const argvLog = join(binDir, 'argv.log');
    writeFileSync(join(binDir, 'ipmitool'), `#!/bin/sh\nprintf '%s ' "$@" >> '${argvLog}'\necho >> '${argvLog}'\necho "Chassis Power is on"\n`, { mode: 0o755 });
    const savedPath = process.env.PATH;
    process.env.PATH = `${binDir}:${savedPath ?? '/usr/bin:/bin'}`;
    const seen: SeenRequest[] = [];
    const server = http.createServer(bmcHandler(seen, () => normalBmc('Off')));
    const port = await listen(server);
    try {
      const ipmi: PowerDriver | null = powerDriverFor(parsedPower({ driver: 'ipmi', address: '10.0.0.21', user: 'ADMIN', passwordFile }));
      expect(await ipmi!.status()).toBe('on');
      expect(readFileSync(argvLog, 'utf8').trim()).toBe(`-I lanplus -H 10.0.0.21 -U ADMIN -f ${passwordFile} chassis power status`);

      const redfish = powerDriverFor(parsedPower({ driver: 'redfish', url: `http://127.0.0.1:${port}`, user: 'root', passwordFile, allowHttp: true }));
      await redfish!.reset();
      expect(await redfish!.status()).toBe('off');
      expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual([
        'POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset',
        'GET /redfish/v1/Systems/1',
      ]);

      const qmpSock = join(dir, 'pdf-qmp.sock');
      const qmp = new FakeQmp(qmpSock);
      await qmp.listen();
      try {
        await powerDriverFor(parsedPower({ driver: 'qmp', socket: qmpSock }))!.reset();
        expect(qmp.connections).toEqual([['qmp_capabilities', 'system_reset']]);
      } finally {
        await qmp.close();
      }
    } finally {
      process.env.PATH = savedPath;
      await closeServer(server);
    }
  });
});
