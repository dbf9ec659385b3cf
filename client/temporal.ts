// Connecting to Temporal and finding a host's workflow.
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Profile } from '../lib/profile.js';
import type { UpgradeInput } from '../lib/workflow-api.js';
import { hostWorkflowId } from '../lib/profile.js';
import { finalStatusFrom, statusQuery, type WorkflowStatus } from '../lib/workflow-api.js';

export const temporalAddress = () => process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
export const temporalNamespace = () => process.env.TEMPORAL_NAMESPACE ?? 'default';

export async function connectClient(): Promise<Client> {
  const address = temporalAddress();
  try {
    const connection = await Connection.connect({ address, connectTimeout: '5s' });
    return new Client({ connection, namespace: temporalNamespace() });
  } catch (e) {
    throw new Error(`cannot reach the Temporal server at ${address} (${(e as Error).message}); start it with ./temporal-dev.sh start`);
  }
}

/**
 * The latest status of a host's workflow: the live query while it runs, the result (or the
 * status carried by its failure) once it ended; null when this host never had one.
 */
export async function hostStatus(client: Client, host: string): Promise<WorkflowStatus | null> {
  const handle = client.workflow.getHandle(hostWorkflowId(host));
  let running: boolean;
  try {
    running = (await handle.describe()).status.name === 'RUNNING';
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return null;
    throw e;
  }
  if (running) return handle.query(statusQuery);
  try {
    return (await handle.result()) as WorkflowStatus;
  } catch (e) {
    const s = finalStatusFrom(e);
    if (s) return s;
    // Cancelled or terminated: the query still answers when a worker is up.
    return handle.query(statusQuery).catch(() => {
      throw new Error(`the workflow for ${host} ended without a status: ${(e as Error).message}`);
    });
  }
}

/** The profile the host's latest workflow ran with (its input, from the history). */
export async function lastProfile(client: Client, host: string): Promise<Profile | null> {
  try {
    const history = await client.workflow.getHandle(hostWorkflowId(host)).fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    return payload ? defaultPayloadConverter.fromPayload<UpgradeInput>(payload).profile : null;
  } catch (e) {
    // fetchHistory reports an unknown workflow as a raw gRPC NOT_FOUND (code 5).
    if (e instanceof WorkflowNotFoundError || (e as { code?: number }).code === 5) return null;
    throw e;
  }
}
