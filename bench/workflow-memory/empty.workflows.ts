// bench:workflow-memory's baseline: a workflow that loads nothing and waits.
import { condition, defineQuery, setHandler } from '@temporalio/workflow';

export const readyQuery = defineQuery<boolean>('ready');

export async function idle(): Promise<void> {
  setHandler(readyQuery, () => true);
  await condition(() => false);
}
