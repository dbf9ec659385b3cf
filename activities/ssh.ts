// Host access over SSH (ssh2), one concern per file in ./ssh/: the connection and its commands
// (host.ts, with what it guarantees), the per-worker pool (pool.ts), the errors (errors.ts).
export { SshHost } from './ssh/host.js';
export { closeAllHosts, withHost } from './ssh/pool.js';
export { CommandError, HostKeyMismatchError, isConnectionLoss, SshConnectError } from './ssh/errors.js';
export type { ExecOptions, ExecResult } from './ssh/exec-types.js';
export { RUN_MARKER } from './ssh/reaper.js';
export { targetFromProfile, type SshTarget } from './ssh/target.js';
