// bench:workflow-memory: the baseline workflow with zod loaded (and one tiny schema used).
import { condition, defineQuery, setHandler } from '@temporalio/workflow';
import { z } from 'zod';

export const readyQuery = defineQuery<boolean>('ready');

export async function idle(input: unknown): Promise<void> {
  setHandler(readyQuery, () => z.object({ n: z.number() }).safeParse(input).success);
  await condition(() => false);
}
