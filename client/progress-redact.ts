// Failure messages of attempts that are retried never reach a workflow history, so the CLI is the
// first to print them. The activities word their errors without secrets (profiles hold only
// references to them); this is a second line of defence for what a command's stderr might echo:
// credentials in URLs, bearer tokens and password assignments, and PEM private key blocks.

const RULES: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[private key redacted]'],
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]*@/gi, '$1[redacted]@'],
  [/\b(authorization:\s*(?:bearer|basic)\s+)\S+/gi, '$1[redacted]'],
  [/\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, '$1[redacted]'],
  [/\b((?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1[redacted]'],
];

export function redactSecrets(text: string): string {
  return RULES.reduce((t, [re, to]) => t.replace(re, to), text);
}
