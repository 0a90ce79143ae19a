/**
 * The daemon's one lifecycle state. `stopping` and `killed` are halting: nothing more is read or
 * confirmed, and no other state replaces them until run() ends; `stopped` and `failed` are final
 * (run() resolved or rejected).
 */
export type DaemonState = 'created' | 'preflight' | 'standby' | 'streaming' | 'reconnecting' | 'stopping' | 'killed' | 'stopped' | 'failed';

export class Lifecycle {
  private current: DaemonState = 'created';

  get state(): DaemonState {
    return this.current;
  }

  get halting(): boolean {
    return this.current === 'stopping' || this.current === 'killed';
  }

  get ended(): boolean {
    return this.current === 'stopped' || this.current === 'failed';
  }

  /** Move to a running state, unless halting or ended. */
  enter(next: 'preflight' | 'standby' | 'streaming' | 'reconnecting'): void {
    if (!this.halting && !this.ended) this.current = next;
  }

  /** Halt (a stop or a kill) or end: these always apply. */
  become(next: 'stopping' | 'killed' | 'stopped' | 'failed'): void {
    this.current = next;
  }
}
