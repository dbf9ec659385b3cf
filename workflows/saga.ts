// The compensation stack. A step that changes the host is run with its undo, and the undo is
// registered BEFORE the step runs: a step may change the host and still fail (GRUB's files
// rewritten, then update-grub fails), and that half-done change must be undone too. So every
// undo must be safe to run whether its step did nothing, part or all of its work.
import { CancellationScope } from '@temporalio/workflow';
import type { PhaseName } from '../lib/workflow-api.js';
import { describeError } from './describe.js';
import type { HostRun } from './host-run.js';

export interface Undo {
  /** Its phase in the timeline (compensate.*). */
  phase: PhaseName;
  run: () => Promise<unknown>;
  /** What a human has to check when the undo itself fails. */
  otherwise: string;
}

export class Saga {
  private readonly undos: Undo[] = [];

  constructor(private readonly run: HostRun) {}

  /** Registers `undo`, then runs `step` as the phase `phase`. */
  async step<T>(phase: PhaseName, undo: Undo, step: () => Promise<T>, describe?: (r: T) => string | undefined): Promise<T> {
    this.undos.push(undo);
    return this.run.phase(phase, step, describe);
  }

  /**
   * Runs the registered undos, last first, and forgets them; not cancellable, so a cancel
   * request cannot leave the host half undone. A failing undo is noted and the rest still run.
   */
  async unwind(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (let u = this.undos.pop(); u; u = this.undos.pop()) {
        try {
          await this.run.phase(u.phase, u.run);
        } catch (err) {
          this.run.notice(`compensation ${u.phase} failed: ${describeError(err)} — ${u.otherwise}`);
        }
      }
    });
  }
}
