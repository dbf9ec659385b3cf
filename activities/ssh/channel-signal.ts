import type { ClientChannel } from 'ssh2';

/** Send a signal even after our side sent EOF (ssh2's Channel.signal is a no-op once we ended stdin). */
export function sendSignal(ch: ClientChannel, name: string): void {
  try {
    const c = ch as unknown as {
      writable: boolean;
      outgoing?: { id: number; state: string };
      _client?: { _protocol?: { signal(id: number, name: string): void } };
    };
    if (c.writable) ch.signal(name);
    else if (c.outgoing?.state === 'open' || c.outgoing?.state === 'eof') c._client?._protocol?.signal(c.outgoing.id, name);
  } catch {
    // The channel or connection is already gone: nothing left to signal.
  }
}
