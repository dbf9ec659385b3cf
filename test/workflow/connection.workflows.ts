// A workflow that only proves a worker runs it: bundled by test/workflow/tls-connection.test.ts
// only; never registered by the real worker.

/** Returns a greeting for `name`. */
export async function greet(name: string): Promise<string> {
  return `hello ${name}`;
}
