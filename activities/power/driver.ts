// What every out-of-band power backend offers (./qmp.ts, ./ipmi.ts, ./redfish.ts).

export type PowerStatus = 'on' | 'off' | 'unknown';

export interface PowerDriver {
  /** Hard reset (no guest shutdown): the machine restarts from firmware. */
  reset(): Promise<void>;
  /** Hard power off, no guest shutdown. */
  powerOff(): Promise<void>;
  /** Power on (from off: a fresh boot from firmware). */
  powerOn(): Promise<void>;
  status(): Promise<PowerStatus>;
}

export class PowerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PowerError';
  }
}
