// The errors a host connection or command ends with: each message says what happened on which
// host, with the command (shortened) and the tail of its stderr.
import type { ExecResult } from './exec-types.js';

const STDERR_LINES_IN_MESSAGE = 10;

function briefCommand(command: string): string {
  return command.length > 300 ? `${command.slice(0, 300)}…` : command;
}

function stderrTail(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  const tail = lines.slice(-STDERR_LINES_IN_MESSAGE).join('\n');
  return tail.length > 2000 ? tail.slice(-2000) : tail;
}

export type FailureKind = 'exit' | 'signal' | 'timeout' | 'lost' | 'not-started' | 'no-status';

export class CommandError extends Error {
  readonly result: ExecResult;
  constructor(
    result: ExecResult,
    readonly kind: FailureKind = 'exit',
    detail?: string,
  ) {
    const cmd = briefCommand(result.command);
    let message: string;
    switch (kind) {
      case 'timeout':
        message = `Command timed out after ${detail ?? '?'}ms: ${cmd}`;
        break;
      case 'lost':
        message = `Connection lost while running ${cmd}: exit status unknown`;
        break;
      case 'not-started':
        message = `${detail ?? 'Connection closed'}; command not started: ${cmd}`;
        break;
      case 'no-status':
        message = `Channel closed without an exit status while running ${cmd}: exit status unknown`;
        break;
      case 'signal':
        message = `Command killed by signal ${result.signal ?? '?'}: ${cmd}`;
        break;
      default:
        message = `Command failed with exit code ${result.exitCode}: ${cmd}`;
    }
    const tail = stderrTail(result.stderr);
    if (tail) message += `\n${tail}`;
    super(message);
    this.name = 'CommandError';
    this.result = result;
  }
}

export class HostKeyMismatchError extends Error {
  constructor(
    readonly host: string,
    readonly presented: string,
    readonly expected: string,
  ) {
    super(
      `Host key verification failed for ${host}: the server presented ${presented}, ` +
        `expected ${expected}. Refusing to connect (the host was reinstalled, or this is not the host you think).`,
    );
    this.name = 'HostKeyMismatchError';
  }
}

/**
 * Why a connection failed: 'network' (nothing answered, or the connection dropped before the
 * handshake ended: a host still booting looks like this), 'credentials' (the host refused our
 * key), 'setup' (our side: an unreadable identity file, no agent, a malformed pin).
 */
export type ConnectFailure = 'network' | 'credentials' | 'setup';

export class SshConnectError extends Error {
  readonly failure: ConnectFailure;
  constructor(message: string, options: { cause?: unknown; failure?: ConnectFailure } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = 'SshConnectError';
    this.failure = options.failure ?? 'network';
  }
}

/**
 * The host could not be reached, or the connection dropped before a command could finish: worth
 * trying again later. Refused credentials and a changed host key are not.
 */
export function isConnectionLoss(e: unknown): boolean {
  if (e instanceof SshConnectError) return e.failure === 'network';
  return e instanceof CommandError && (e.kind === 'lost' || e.kind === 'not-started');
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error(typeof r === 'string' ? r : 'The operation was aborted');
  e.name = 'AbortError';
  return e;
}
