// When to ask Python for data: one refresh per burst of changes (a microtask later), each
// with a ticket so a repaint can tell that a newer one has started and drop its stale reply.

/** Runs one refresh; `quiet`: a live update (the runs changed, same settings). */
export type Refresh = (ticket: number, quiet: boolean) => Promise<void>;

export class Scheduler {
  private ticket = 0;
  private scheduled = false;
  // A live update keeps everything in place (no dimming, same scroll); any other change in
  // the same burst makes the refresh a normal one.
  private liveOnly = false;
  // A live update that arrives while a request is in flight waits for it (else, with replies
  // slower than the refresh interval, each reply would be dropped as stale by the next one).
  private inflight = false;
  private liveAgain = false;

  constructor(private readonly refresh: Refresh) {}

  /** Is `ticket` still the latest refresh? */
  current(ticket: number): boolean {
    return ticket === this.ticket;
  }

  schedule(live = false): void {
    if (live && this.inflight && !this.scheduled) {
      this.liveAgain = true;
      return;
    }
    if (this.scheduled) {
      if (!live) this.liveOnly = false;
      return;
    }
    this.scheduled = true;
    this.liveOnly = live;
    queueMicrotask(() => void this.run());
  }

  private async run(): Promise<void> {
    this.scheduled = false;
    const quiet = this.liveOnly;
    this.liveOnly = false;
    const mine = ++this.ticket;
    this.inflight = true;
    try {
      await this.refresh(mine, quiet);
    } finally {
      if (mine === this.ticket) {
        this.inflight = false;
        if (this.liveAgain) {
          this.liveAgain = false;
          this.schedule(true);
        }
      }
    }
  }
}
