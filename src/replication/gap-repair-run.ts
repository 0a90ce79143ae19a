/**
 * The repair of the gap after a slot was recreated (slot-guard.ts), run beside the stream: while it
 * runs /readyz is not ready; when it ends the slot's record says so; a failure ends the daemon (a
 * restart repeats the repair).
 */
import type { Logger } from '../logger.ts';
import { repairEnded, type SlotGuard } from './slot-guard.ts';

export class GapRepairRun {
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();

  start(guard: SlotGuard, slot: string, log: Logger, onFailure: (error: Error) => void): void {
    this.running = guard.repair(this.abort.signal).then(
      async () => {
        await repairEnded(slot, guard.ledger);
        log.info({ slot }, `the gap after slot ${slot} was recreated is repaired: ClickHouse holds every change`);
        this.running = undefined;
      },
      (error: Error) => {
        this.running = undefined;
        onFailure(error);
      },
    );
  }

  /** A repair is running: /readyz is not ready. */
  get active(): boolean {
    return this.running !== undefined;
  }

  /** Ask a running repair to stop (the daemon stops, crashes or failed). */
  cancel(): void {
    this.abort.abort();
  }

  /** Resolves once no repair runs. */
  async ended(): Promise<void> {
    await this.running;
  }
}
