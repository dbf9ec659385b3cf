// scripts/lint-workflows.js on small projects written to a temp dir: each rule fails where it
// should and passes the allowed forms.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const script = join(import.meta.dirname, '../../scripts/lint-workflows.js');
const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((r) => rmSync(r, { recursive: true, force: true })));

function lint(files: Record<string, string>) {
  const root = mkdtempSync(join(tmpdir(), 'lint-wf-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const r = spawnSync(process.execPath, [script, root], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('lint-workflows', () => {
  it('passes workflow code that imports only pure modules', () => {
    const r = lint({ 'workflows/index.ts': "import { x } from '../lib/x.js';\nexport const y = x;\n", 'lib/x.ts': 'export const x = 1;\n' });
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toContain('lint-workflows: ok (2 files: lib/x.ts, workflows/index.ts)');
  });

  it('refuses a Node builtin and a value import of activity code, naming file and line', () => {
    const r = lint({
      'workflows/index.ts': "import { readFileSync } from 'node:fs';\nimport { act } from '../activities/act.js';\nexport { readFileSync, act };\n",
      'activities/act.ts': 'export const act = 1;\n',
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain("workflows/index.ts:1: imports Node builtin 'node:fs'");
    expect(r.out).toContain("workflows/index.ts:2: value import of activity code '../activities/act.js'");
  });

  it('refuses zod reached by a static import chain from the bundle entry, showing the chain', () => {
    const r = lint({
      'workflows/index.ts': "export * from './campaign.js';\n",
      'workflows/campaign.ts': "import { schema } from '../lib/schema.js';\nexport const c = schema;\n",
      'lib/schema.ts': "import { z } from 'zod';\nexport const schema = z.string();\n",
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain("lib/schema.ts:1: 'zod' is loaded by every workflow instance (workflows/index.ts → workflows/campaign.ts → lib/schema.ts)");
  });

  it('allows zod behind a dynamic import or a type-only import', () => {
    const r = lint({
      'workflows/index.ts':
        "import type { Schema } from '../lib/schema.js';\n" +
        "export async function check(v: unknown): Promise<Schema> {\n  const { schema } = await import(/* webpackMode: \"eager\" */ '../lib/schema.js');\n  return schema.parse(v);\n}\n",
      'lib/schema.ts': "import { z } from 'zod';\nexport const schema = z.string();\nexport type Schema = string;\n",
    });
    expect(r).toMatchObject({ code: 0 });
  });
});
