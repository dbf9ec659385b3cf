// What one chaos run shares across its cases (the Temporal server's address and database, the
// client, the task queue, the lab image and release), restarting that server on the same
// database, and bounded client calls.
import type { Client } from '@temporalio/client';
import type { LabImage, LabRelease } from '../../lab/session.js';
import { startDevServer } from '../../test/helpers/temporal.js';
import { server, setServer } from './processes.js';

export interface Session {
  address: string;
  port: number;
  dbFile: string;
  client: Client;
  taskQueue: string;
  workDir: string;
  image: LabImage;
  release: LabRelease;
  /** VERSION_ID of the lab release (os-release of the new slot after an upgrade). */
  releaseVersion: string;
  caseTimeoutMs: number;
  manifest: boolean;
}

export async function restartServer(sess: Session): Promise<number> {
  const t = Date.now();
  await server!.kill();
  setServer(await startDevServer({ port: sess.port, dbFile: sess.dbFile }));
  return (Date.now() - t) / 1000;
}

/** Bounded, for calls that may hang while the server or the worker is away. */
export function within<T>(client: Client, ms: number, fn: () => Promise<T>): Promise<T> {
  return client.withDeadline(Date.now() + ms, fn);
}
