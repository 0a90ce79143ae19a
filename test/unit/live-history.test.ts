/** The live page's ring buffer: figures as /metrics has them, rates between samples, events from counters. */
import client from 'prom-client';
import { expect, it } from 'vitest';
import { LiveHistory } from '../../src/ops/live.ts';

function registryWithDaemonMetrics() {
  const registry = new client.Registry();
  const lag = new client.Gauge({ name: 'runs_cdc_replication_lag_seconds', help: 'h', registers: [registry] });
  const changes = new client.Counter({
    name: 'runs_cdc_changes_received_total',
    help: 'h',
    labelNames: ['table', 'operation'],
    registers: [registry],
  });
  const retries = new client.Counter({
    name: 'runs_cdc_clickhouse_retries_total',
    help: 'h',
    labelNames: ['reason'],
    registers: [registry],
  });
  const ready = new client.Gauge({ name: 'runs_cdc_ready', help: 'h', registers: [registry] });
  return { registry, lag, changes, retries, ready };
}

it('keeps the last N samples with the gauges as scraped and counter totals as rates', async () => {
  const { registry, lag, changes } = registryWithDaemonMetrics();
  const history = new LiveHistory(registry, async () => [], 3);
  for (let i = 0; i < 5; i++) {
    lag.set(i);
    changes.inc({ table: 'TaskRun', operation: 'insert' }, 10);
    changes.inc({ table: 'task_run_v2', operation: 'update' }, 5);
    await history.sample();
    await new Promise((r) => setTimeout(r, 5));
  }
  const samples = history.history();
  expect(samples.map((s) => s.lagSeconds)).toEqual([2, 3, 4]);
  for (const s of samples) expect(s.changesPerSecond).toBeGreaterThan(0);
  const [first] = new LiveHistory(registry, async () => []).history();
  expect(first).toBeUndefined();
});

it('turns counter increases and not-ready samples into events, newest first', async () => {
  const { registry, retries, ready } = registryWithDaemonMetrics();
  ready.set(1);
  const history = new LiveHistory(registry, async () => ['not streaming from the replication slot']);
  await history.sample();
  expect(history.recentEvents()).toEqual([]);
  retries.inc({ reason: 'TOO_MANY_PARTS' }, 2);
  await history.sample();
  ready.set(0);
  await history.sample();
  expect(history.recentEvents().map((e) => [e.kind, e.detail])).toEqual([
    ['not ready', 'not streaming from the replication slot'],
    ['retry', '2 ClickHouse retries: TOO_MANY_PARTS'],
  ]);
  // A sample that is only looked at (the page's "now") changes neither history nor events.
  retries.inc({ reason: 'TIMEOUT' });
  await history.sample(false);
  expect(history.recentEvents()).toHaveLength(2);
  expect(history.history()).toHaveLength(3);
});
