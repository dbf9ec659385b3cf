// Host words as both inventory forms write them: ranges (web[01:03]) and name:port.

/** web[01:03] → web01, web02, web03; db-[a:c] → db-a, db-b, db-c; [1:9:2] steps by 2. */
export function expandHostPattern(pattern: string): string[] {
  const m = /^(.*?)\[([^\]]*)\](.*)$/.exec(pattern);
  if (!m) {
    if (/[[\]]/.test(pattern)) throw new Error(`"${pattern}": unbalanced [ ] in a host name`);
    return [pattern];
  }
  const [, head, range, tail] = m as unknown as [string, string, string, string];
  const r = /^(?:(\d+):(\d+)|([a-z]):([a-z]))(?::(\d+))?$/.exec(range);
  if (!r) throw new Error(`"${pattern}": unsupported host range [${range}] (use [01:10], [a:f] or [1:9:2], or list the hosts one per line)`);
  const stride = r[5] === undefined ? 1 : Number(r[5]);
  if (stride < 1) throw new Error(`"${pattern}": the stride of a host range must be at least 1`);
  const items: string[] = [];
  if (r[1] !== undefined) {
    const [from, to] = [Number(r[1]), Number(r[2])];
    if (from > to) throw new Error(`"${pattern}": the range [${range}] ends before it starts`);
    const width = r[1].length > 1 && r[1].startsWith('0') ? r[1].length : 0;
    for (let n = from; n <= to; n += stride) items.push(String(n).padStart(width, '0'));
  } else {
    const [from, to] = [r[3]!.charCodeAt(0), r[4]!.charCodeAt(0)];
    if (from > to) throw new Error(`"${pattern}": the range [${range}] ends before it starts`);
    for (let c = from; c <= to; c += stride) items.push(String.fromCharCode(c));
  }
  return items.flatMap((item) => expandHostPattern(`${head}${item}${tail}`));
}

/** A host word: its names (ranges expanded) and a port given as `name:port`. */
export function hostWord(word: string): { names: string[]; port?: string } {
  // name:port, but not an IPv6 address (more than one ":") nor a range ("[1:3]").
  const m = /^([^:[\]]+(?:\[[^\]]*\][^:[\]]*)*):(\d+)$/.exec(word);
  const names = expandHostPattern(m ? m[1]! : word);
  for (const n of names) if (!/^[A-Za-z0-9._:-]+$/.test(n)) throw new Error(`"${n}" is not a host name`);
  return m ? { names, port: m[2]! } : { names };
}
