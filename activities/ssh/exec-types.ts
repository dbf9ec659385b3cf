// What a command run on a host returns, and how it may be run.
export interface ExecResult {
  command: string;
  /** The command's exit status; null when unknown (timeout, abort, killed by a signal, connection lost). */
  exitCode: number | null;
  /** The signal that ended the command on the host (e.g. "SIGTERM", Node's spelling), when sshd reported one. */
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface ExecOptions {
  /**
   * Kill the command after this long, counted from when it gets a channel (time spent queued
   * behind maxChannels does not count): KILL over SSH, close the channel, then kill the
   * command's processes on the host. The result has timedOut true and exitCode null.
   */
  timeoutMs?: number;
  /** Aborting kills the command like a timeout; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
  stdin?: string | Buffer | NodeJS.ReadableStream;
  /**
   * Default true: reject with CommandError unless the exit code is 0. With false, the result is
   * returned whatever the exit code, also when the command was killed by a signal or timed out
   * (exitCode null, timedOut true). Still rejected either way: a lost connection (CommandError,
   * exitCode null), a command that could not be started (CommandError), an abort (the signal's
   * reason: Temporal's CancelledFailure, or an AbortError).
   */
  check?: boolean;
  onStdoutChunk?: (chunk: Buffer) => void;
  /** Per stream; beyond it the oldest output is dropped and the tail kept. Default 64 MiB. */
  maxBuffer?: number;
}
