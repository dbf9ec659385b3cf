#!/usr/bin/env node
// Lints the code that runs inside Temporal's deterministic workflow sandbox:
//   workflows/**, lib/workflow-api.ts, the test-only workflows (test/**/*.workflows.ts), and
//   every project file they import (transitively).
// Fails (exit 1, one "file:line: problem" per line) on:
//   - an import of a Node builtin (node:*, fs, child_process, ...);
//   - a value (non-type) import of activities/ — workflows reach activities only through
//     proxyActivities<HostActivities> and `import type`;
//   - a value import of a package that needs Node or does I/O (@temporalio/client, /worker,
//     /activity, /testing, ssh2, ...);
//   - a static import chain from the bundle's entry (workflows/index.ts) to a package that is
//     heavy per workflow (zod): the sandbox evaluates every module a workflow loads once per
//     workflow instance and keeps it while the workflow is cached, so such a package may be
//     reached only through a dynamic `await import(...)` that one workflow alone runs.
// Type-only imports (`import type`, `export type ... from`, `import { type A, type B }`) are
// erased at bundle time and allowed. Plain Node ESM, no dependencies.
//
//   node scripts/lint-workflows.js [project-root]
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));
const FORBIDDEN_PACKAGES = [
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  '@temporalio/testing',
  'ssh2',
  'commander',
  'tsx',
  'vitest',
];
const SOURCE_EXT = ['.ts', '.mts', '.js', '.mjs'];

/** Blanks out comments (keeping newlines, so line numbers stay right). */
function stripComments(src) {
  let out = '';
  let i = 0;
  let quote = null;
  while (i < src.length) {
    const c = src[i];
    const n = src[i + 1];
    if (quote) {
      out += c;
      if (c === '\\') {
        out += n ?? '';
        i += 2;
        continue;
      }
      if (c === quote) quote = null;
      i++;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      quote = c;
      out += c;
      i++;
      continue;
    }
    if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') {
        out += ' ';
        i++;
      }
      continue;
    }
    if (c === '/' && n === '*') {
      out += '  ';
      i += 2;
      while (i < src.length && !(src[i] === '*' && src[i + 1] === '/')) {
        out += src[i] === '\n' ? '\n' : ' ';
        i++;
      }
      out += '  ';
      i += 2;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

const lineOf = (src, index) => src.slice(0, index).split('\n').length;

/** Every import/export-from/dynamic import/require in `src`: { spec, typeOnly, line }. */
function importsOf(src) {
  const code = stripComments(src);
  const found = [];
  // import X from 'y'; import {a, type b} from 'y'; import type X from 'y'; import 'y';
  // export {a} from 'y'; export * from 'y'; export type {a} from 'y'
  const stmt = /(^|[;\n}])\s*(import|export)(\s+type)?(?:\s+([^'";]*?)\s+from\s*|\s*)(['"])([^'"\n]+)\5/g;
  for (let m = stmt.exec(code); m; m = stmt.exec(code)) {
    const [, , kw, typeKw, clause = '', , spec] = m;
    if (kw === 'export' && !clause) continue; // `export 'x'` is not a thing
    let typeOnly = Boolean(typeKw);
    if (!typeOnly) {
      // import { type A, type B } from '...' (no default, every specifier typed) is erased too.
      const braces = /^\{([^}]*)\}$/.exec(clause.trim());
      if (braces) {
        const names = braces[1].split(',').map((s) => s.trim()).filter(Boolean);
        typeOnly = names.length > 0 && names.every((s) => /^type\s/.test(s));
      }
    }
    found.push({ spec, typeOnly, line: lineOf(code, m.index + m[0].indexOf(kw, m[1].length)) });
  }
  const dyn = /\b(?:import|require)\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g;
  for (let m = dyn.exec(code); m; m = dyn.exec(code)) {
    found.push({ spec: m[2], typeOnly: false, dynamic: true, line: lineOf(code, m.index) });
  }
  return found;
}

function isBuiltin(spec) {
  if (spec.startsWith('node:')) return true;
  return BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]);
}

function resolveRelative(fromFile, spec) {
  const base = resolve(dirname(fromFile), spec);
  const stem = base.replace(/\.(m?js|m?ts)$/, '');
  const candidates = [base, ...SOURCE_EXT.map((e) => stem + e), ...SOURCE_EXT.map((e) => join(base, 'index' + e))];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return d.name === 'node_modules' ? [] : walk(p);
    return SOURCE_EXT.some((e) => d.name.endsWith(e)) && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

const activitiesDir = join(root, 'activities') + sep;
const testWorkflows = walk(join(root, 'test')).filter((f) => f.endsWith('.workflows.ts'));
const entry = [...walk(join(root, 'workflows')), join(root, 'lib', 'workflow-api.ts'), ...testWorkflows].filter((f) => existsSync(f));
const queue = [...entry];
const seen = new Set();
const problems = [];

while (queue.length) {
  const file = queue.shift();
  if (seen.has(file)) continue;
  seen.add(file);
  const rel = relative(root, file);
  const src = readFileSync(file, 'utf8');
  for (const { spec, typeOnly, line } of importsOf(src)) {
    if (spec.startsWith('.')) {
      const target = resolveRelative(file, spec);
      if (!target) {
        problems.push(`${rel}:${line}: cannot resolve '${spec}'`);
        continue;
      }
      if (typeOnly) continue;
      if (target.startsWith(activitiesDir)) {
        problems.push(`${rel}:${line}: value import of activity code '${spec}' — use \`import type\` and proxyActivities<HostActivities>`);
        continue;
      }
      queue.push(target); // pure lib code a workflow runs must itself be clean
      continue;
    }
    if (typeOnly) continue;
    if (isBuiltin(spec)) {
      problems.push(`${rel}:${line}: imports Node builtin '${spec}' — not available in the workflow sandbox (do I/O in an activity)`);
    } else if (FORBIDDEN_PACKAGES.some((p) => spec === p || spec.startsWith(p + '/'))) {
      problems.push(`${rel}:${line}: imports '${spec}', which does I/O or needs Node — not allowed in workflow code`);
    }
  }
}

// Static value imports only, from the bundle's entry: what every workflow instance evaluates.
const HEAVY_PER_WORKFLOW = ['zod'];
const bundleEntry = join(root, 'workflows', 'index.ts');
const reachedFrom = new Map([[bundleEntry, null]]);
for (const todo = [bundleEntry]; todo.length; ) {
  const file = todo.shift();
  for (const { spec, typeOnly, dynamic, line } of importsOf(readFileSync(file, 'utf8'))) {
    if (typeOnly || dynamic) continue;
    if (!spec.startsWith('.')) {
      if (!HEAVY_PER_WORKFLOW.some((p) => spec === p || spec.startsWith(p + '/'))) continue;
      const chain = [];
      for (let f = file; f; f = reachedFrom.get(f)) chain.unshift(relative(root, f));
      problems.push(
        `${relative(root, file)}:${line}: '${spec}' is loaded by every workflow instance (${chain.join(' → ')}) — ` +
          'import it with `await import(/* webpackMode: "eager" */ ...)` where one workflow needs it, or check in a local activity',
      );
      continue;
    }
    const target = resolveRelative(file, spec);
    if (target && !reachedFrom.has(target) && !target.startsWith(activitiesDir)) {
      reachedFrom.set(target, file);
      todo.push(target);
    }
  }
}

if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`lint-workflows: ${problems.length} problem(s) in workflow code`);
  process.exit(1);
}
console.log(`lint-workflows: ok (${seen.size} files: ${[...seen].map((f) => relative(root, f)).sort().join(', ')})`);
