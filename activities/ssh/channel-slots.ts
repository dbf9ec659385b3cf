/** FIFO counting semaphore whose waits can be abandoned. */
export class Slots {
  private used = 0;
  private waiters: Array<{ grant: () => void }> = [];
  constructor(private readonly max: number) {}
  acquire(): { ready: Promise<void>; cancel: () => void } {
    if (this.used < this.max) {
      this.used++;
      return { ready: Promise.resolve(), cancel: () => {} };
    }
    let grant!: () => void;
    const ready = new Promise<void>((res) => (grant = res));
    const w = { grant };
    this.waiters.push(w);
    return {
      ready,
      cancel: () => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
      },
    };
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next.grant();
    else this.used--;
  }
}
