// Connection pool: one connection per target, reused across activities in this worker.
import { SshHost } from './host.js';
import type { SshTarget } from './target.js';

const IDLE_CLOSE_MS = 120_000;

interface PoolEntry {
  host: Promise<SshHost>;
  users: number;
  idleTimer?: NodeJS.Timeout;
}

const pool = new Map<string, PoolEntry>();

/** user@host:port, plus every other setting: a changed pin or key never reuses an old connection. */
function poolKey(t: SshTarget): string {
  const { user, host, port, ...rest } = t;
  const sorted = Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b)));
  return `${user}@${host}:${port} ${JSON.stringify(sorted)}`;
}

function getEntry(target: SshTarget): PoolEntry {
  const key = poolKey(target);
  const existing = pool.get(key);
  if (existing) return existing;
  const entry: PoolEntry = { host: SshHost.connect(target), users: 0 };
  pool.set(key, entry);
  entry.host.then(
    (h) => {
      h.onClose(() => {
        if (pool.get(key) === entry) pool.delete(key);
        if (entry.idleTimer) clearTimeout(entry.idleTimer);
      });
      if (h.closed && pool.get(key) === entry) pool.delete(key);
    },
    () => {
      if (pool.get(key) === entry) pool.delete(key);
    },
  );
  return entry;
}

/** Pooled connections keyed by user@host:port, reused across activities in one worker; a dead one is replaced. */
export async function withHost<T>(target: SshTarget, fn: (h: SshHost) => Promise<T>): Promise<T> {
  const key = poolKey(target);
  let entry = getEntry(target);
  entry.users++;
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  let host: SshHost;
  try {
    host = await entry.host;
    if (host.closed) {
      // Died between uses: drop it and connect afresh, once.
      entry.users--;
      if (pool.get(key) === entry) pool.delete(key);
      entry = getEntry(target);
      entry.users++;
      host = await entry.host;
    }
  } catch (e) {
    entry.users--;
    throw e;
  }
  try {
    return await fn(host);
  } finally {
    entry.users--;
    if (host.closed) {
      if (pool.get(key) === entry) pool.delete(key);
    } else if (entry.users === 0 && pool.get(key) === entry) {
      const e = entry;
      e.idleTimer = setTimeout(() => {
        if (e.users === 0 && pool.get(key) === e) {
          pool.delete(key);
          host.close();
        }
      }, IDLE_CLOSE_MS);
      e.idleTimer.unref();
    }
  }
}

export function closeAllHosts(): void {
  const entries = [...pool.values()];
  pool.clear();
  for (const e of entries) {
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.host.then(
      (h) => h.close(),
      () => {},
    );
  }
}
