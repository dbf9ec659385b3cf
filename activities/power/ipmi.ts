// IPMI via ipmitool.
import { PowerError, type PowerDriver, type PowerStatus } from './driver.js';
import { runCommand } from '../../lib/run-command.js';

export interface IpmiOptions {
  address: string;
  user: string;
  passwordFile: string;
  interface?: 'lanplus' | 'lan';
  /** ipmitool binary (tests point this at a fake). */
  ipmitool?: string;
  timeoutMs?: number;
}

/** `ipmitool -I lanplus -H .. -U .. -f <passwordFile> chassis power reset|off|on|status`. */
export class IpmiPowerDriver implements PowerDriver {
  constructor(private readonly o: IpmiOptions) {}

  /** The argv (password only by file, never on the command line). */
  argv(action: 'reset' | 'off' | 'on' | 'status'): string[] {
    return ['-I', this.o.interface ?? 'lanplus', '-H', this.o.address, '-U', this.o.user, '-f', this.o.passwordFile, 'chassis', 'power', action];
  }

  private async ipmi(action: 'reset' | 'off' | 'on' | 'status'): Promise<string> {
    const r = await runCommand(this.o.ipmitool ?? 'ipmitool', this.argv(action), this.o.timeoutMs ?? 30_000);
    if (r.timedOut) throw new PowerError(`ipmitool chassis power ${action}: timed out after ${this.o.timeoutMs ?? 30_000} ms`);
    if (r.exitCode !== 0) {
      throw new PowerError(`ipmitool chassis power ${action} failed with exit code ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
    }
    return r.stdout;
  }

  async reset(): Promise<void> {
    await this.ipmi('reset');
  }
  async powerOff(): Promise<void> {
    await this.ipmi('off');
  }
  async powerOn(): Promise<void> {
    await this.ipmi('on');
  }
  async status(): Promise<PowerStatus> {
    let out: string;
    try {
      out = await this.ipmi('status');
    } catch {
      return 'unknown';
    }
    const m = /Chassis Power is (on|off)/i.exec(out);
    return m ? (m[1]!.toLowerCase() as 'on' | 'off') : 'unknown';
  }
}
