// POSIX shell quoting. Pure: no I/O, no dependencies.
//
// Every argument that reaches a remote shell goes through shQuote, so a path, a package name or
// an operator's string arrives on the host as exactly one argv element, byte for byte. The only
// byte no POSIX shell (and no execve) can carry is NUL, so it is refused instead of truncated.

/** Characters that never need quoting in any POSIX shell word position (no globbing, no expansion). */
const SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/**
 * Quote one argument for a POSIX shell: `'...'`, with each `'` written as `'\''`.
 * The empty string becomes `''`; arguments made only of `[A-Za-z0-9_./:=@%+,-]` stay as they are
 * (except `NAME=...`, which is quoted so that it can never turn into a variable assignment).
 * Throws on a NUL byte, which no shell argument can contain.
 */
export function shQuote(arg: string): string {
  if (typeof arg !== 'string') {
    throw new TypeError(`shQuote: expected a string, got ${arg === null ? 'null' : typeof arg}`);
  }
  if (arg.includes('\0')) {
    throw new Error(`shQuote: argument contains a NUL byte, which cannot be passed to a shell: ${JSON.stringify(arg)}`);
  }
  if (arg === '') return "''";
  // `NAME=value` stays quoted: unquoted in command position the shell would take it as an assignment.
  if (SAFE.test(arg) && !ASSIGNMENT.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quote every element and join with single spaces: the inverse of the shell's word splitting. */
export function shJoin(argv: readonly string[]): string {
  return argv.map(shQuote).join(' ');
}
