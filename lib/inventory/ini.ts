// The INI form of an Ansible inventory.
import { parse as parseYamlText } from 'yaml';
import { addHost, emptyInventory, finish, group, GROUP_NAME, InventoryError, link, PROFILE_VAR_PREFIX, type Inventory, type Vars } from './model.js';
import { hostWord } from './host-pattern.js';

/** Splits a line into words the way Ansible does (shell-like quotes; ` #` starts a comment). */
function words(line: string): string[] | string {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"' || c === "'") {
      const close = line.indexOf(c, i + 1);
      if (close < 0) return `unterminated ${c} quote`;
      cur += line.slice(i + 1, close);
      inWord = true;
      i = close;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else if (c === '#' && !inWord) {
      break;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** A `key=value` word's value: a string, or (ab_upgrade_*) the YAML value it holds. */
function iniValue(key: string, raw: string): unknown {
  if (!key.startsWith(PROFILE_VAR_PREFIX)) return raw;
  try {
    return parseYamlText(raw, { logLevel: 'error' });
  } catch {
    throw new Error(`${key}: not a YAML or JSON value`);
  }
}

function keyValue(word: string): [string, unknown] {
  const eq = word.indexOf('=');
  if (eq <= 0) throw new Error(`expected key=value, not a bare word`);
  const key = word.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`"${key}" is not a variable name`);
  return [key, iniValue(key, word.slice(eq + 1))];
}

export function parseIniInventory(text: string, source = 'inventory'): Inventory {
  const inv = emptyInventory();
  const problems: string[] = [];
  let section: { group: string; kind: 'hosts' | 'vars' | 'children' } = { group: 'ungrouped', kind: 'hosts' };
  const childLines: { parent: string; child: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    try {
      if (line.startsWith('[')) {
        const m = /^\[([^\]:]+)(?::([^\]]+))?\]\s*(?:[#;].*)?$/.exec(line);
        if (!m) throw new Error('a section header must be [group], [group:vars] or [group:children]');
        const [, name, kind] = m as unknown as [string, string, string | undefined];
        if (!GROUP_NAME.test(name)) throw new Error(`"${name}" is not a group name (letters, digits, "_" and "-")`);
        if (kind !== undefined && kind !== 'vars' && kind !== 'children') throw new Error(`unknown section kind ":${kind}" (use :vars or :children)`);
        section = { group: name, kind: kind ?? 'hosts' };
        group(inv, name);
        return;
      }
      if (section.kind === 'vars') {
        // The rest of the line after "=" is the value (Ansible also accepts "key = value").
        const m = /^([^\s=]+)\s*=\s*(.*)$/.exec(line);
        if (!m) throw new Error('expected key=value in a :vars section');
        const value = /^(["']).*\1$/.test(m[2]!) ? m[2]!.slice(1, -1) : m[2]!.replace(/\s+#.*$/, '');
        const [k, v] = keyValue(`${m[1]}=${value}`);
        group(inv, section.group).vars[k] = v;
      } else {
        const ws = words(line);
        if (typeof ws === 'string') throw new Error(ws);
        if (section.kind === 'children') {
          if (ws.length !== 1 || !GROUP_NAME.test(ws[0]!)) throw new Error('expected one group name per line in a :children section');
          childLines.push({ parent: section.group, child: ws[0]!, line: lineNo });
          return;
        }
        const [first, ...rest] = ws as [string, ...string[]];
        const { names, port } = hostWord(first);
        const vars: Vars = Object.fromEntries(rest.map(keyValue));
        if (port !== undefined && vars.ansible_port === undefined) vars.ansible_port = port;
        for (const n of names) addHost(inv, section.group, n, vars);
      }
    } catch (e) {
      problems.push(`line ${lineNo}: ${(e as Error).message}`);
    }
  });
  for (const c of childLines) {
    if (c.child === 'all') problems.push(`line ${c.line}: "all" cannot be a child group`);
    else link(inv, c.parent, c.child);
  }
  finish(inv, problems);
  if (problems.length) throw new InventoryError(source, problems);
  return inv;
}
