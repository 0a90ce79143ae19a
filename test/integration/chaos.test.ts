/**
 * The chaos test (test/chaos/chaos.ts): short in `npm test`, long with `npm run test:chaos`.
 * CHAOS_SEED replays a run; the seed is printed either way.
 */
import { expect, it } from 'vitest';
import { runChaos } from '../chaos/chaos.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { testClickHouse } from '../support/databases.ts';

const env = freshEnvironmentPerTest();
const seconds = Number(process.env.CHAOS_SECONDS ?? 15);
const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

it(
  `after faults under a random workload, ClickHouse equals Postgres (CHAOS_SEED=${seed}, ${seconds} s)`,
  async () => {
    const stats = await runChaos(env.pgdb, await testClickHouse(), env.database, {
      seed,
      seconds,
      maxTransactionRows: seconds > 30 ? 20_000 : 2_000,
      pauseMs: seconds > 30 ? 0 : 10,
    });
    process.stdout.write(
      `chaos: ${JSON.stringify({ ...stats, verify: { ...stats.verify, differences: stats.verify.differences.slice(0, 10) } })}\n`,
    );
    expect(stats.backfill).toMatch(/^SUCCESS/);
    expect(stats.faults.kills + stats.faults.clickhouseOutages + stats.faults.walsenderTerminations).toBeGreaterThan(0);
    expect(stats.verify.differences).toEqual([]);
    expect(stats.verify.equal).toBe(true);
    expect(stats.slotAtWalEnd).toBe(true);
  },
  (seconds + 120) * 1000,
);
