// Merging account databases: the new release brings its own system accounts (new daemons,
// changed uids), the old slot brings the humans (uid 1000-59999) and every password hash.
// Pure text in, text out; the activity never puts these files in a result or a log.

export interface AccountFiles {
  passwd: string;
  group: string;
  shadow: string;
  gshadow: string;
}

export interface MergedAccounts extends AccountFiles {
  /** Names of the human accounts taken from the old slot. */
  humans: string[];
}

const isHumanId = (id: number) => id >= 1000 && id < 60000;

function rows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const join = (table: string[][]) => table.map((r) => r.join(':')).join('\n') + '\n';

function unionMembers(a: string | undefined, b: string | undefined, known: Set<string>): string {
  const out: string[] = [];
  for (const m of [...(a ?? '').split(','), ...(b ?? '').split(',')]) if (m && known.has(m) && !out.includes(m)) out.push(m);
  return out.join(',');
}

export function mergeAccounts(oldSlot: AccountFiles, newSlot: AccountFiles): MergedAccounts {
  const passwd = rows(newSlot.passwd);
  const names = new Set(passwd.map((r) => r[0]!));
  const humans: string[] = [];
  for (const r of rows(oldSlot.passwd)) {
    if (names.has(r[0]!) || !isHumanId(Number(r[2]))) continue;
    passwd.push(r);
    names.add(r[0]!);
    humans.push(r[0]!);
  }

  // Every user keeps the old slot's shadow line (password hash, ageing) when it had one.
  const oldShadow = new Map(rows(oldSlot.shadow).map((r) => [r[0]!, r]));
  const newShadow = new Map(rows(newSlot.shadow).map((r) => [r[0]!, r]));
  const shadow = passwd.map((p) => oldShadow.get(p[0]!) ?? newShadow.get(p[0]!) ?? [p[0]!, '!', '', '0', '99999', '7', '', '', '']);

  const group = rows(newSlot.group);
  const oldGroups = new Map(rows(oldSlot.group).map((r) => [r[0]!, r]));
  const groupNames = new Set(group.map((r) => r[0]!));
  for (const g of group) {
    const old = oldGroups.get(g[0]!);
    if (old) g[3] = unionMembers(g[3], old[3], names);
  }
  for (const [name, r] of oldGroups) {
    if (groupNames.has(name) || !isHumanId(Number(r[2]))) continue;
    group.push([r[0]!, r[1]!, r[2]!, unionMembers(r[3], '', names)]);
    groupNames.add(name);
  }

  const oldGshadow = new Map(rows(oldSlot.gshadow).map((r) => [r[0]!, r]));
  const newGshadow = new Map(rows(newSlot.gshadow).map((r) => [r[0]!, r]));
  const gshadow = group.map((g) => {
    const base = newGshadow.get(g[0]!) ?? oldGshadow.get(g[0]!) ?? [g[0]!, '!', '', ''];
    return [base[0]!, oldGshadow.get(g[0]!)?.[1] ?? base[1] ?? '!', base[2] ?? '', g[3] ?? ''];
  });

  return { passwd: join(passwd), shadow: join(shadow), group: join(group), gshadow: join(gshadow), humans };
}
