/**
 * The live page on the ops port: `/` (a static page and its assets), `/live.json` (the latest
 * figures, the last minutes of them from an in-process ring buffer, recent errors and retries,
 * recent backfill jobs) and the run-list queries on the API's paths (`/runs`, `/runs/count`,
 * `/runs/stats`, `/runs/tags`) for its runs explorer.
 *
 * Figures are read from the Prometheus registry (what `/metrics` serves), never from the daemon's
 * internals, so the page shows what a scrape would. Nothing secret is served: the slot name, LSNs,
 * counts and the readiness sentences, never a URL or a password.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { parseQuery, type QueryKind, type QueryRouter, queryKindOf, runQuery } from '../queries/params.ts';

/** Sampling period of the ring buffer and how many samples it keeps (15 minutes at 5 s). */
export const SAMPLE_EVERY_MS = 5_000;
export const SAMPLES_KEPT = 180;
/** Recent events (retries, reconnects, dead letters, coercions, not ready) kept for the page. */
const EVENTS_KEPT = 50;

export interface LiveSample {
  /** Unix milliseconds. */
  at: number;
  lagSeconds: number | null;
  lagBytes: number | null;
  /** Per second since the previous sample; null on the first. */
  changesPerSecond: number | null;
  rowsPerSecond: number | null;
  bufferedRows: number | null;
  bufferedBytes: number | null;
  ready: boolean | null;
}

export interface LiveEvent {
  at: number;
  kind: 'retry' | 'reconnect' | 'dead letter' | 'coercion' | 'not ready';
  detail: string;
}

export interface LiveIdentity {
  slot: string;
  confirmedLsn: string;
  maxBufferedRows: number;
  maxBufferedBytes: number;
}

export interface LiveBackfillJob {
  jobId: string;
  status: string;
  rowsCopied: number;
  message: string;
  updatedAt: string;
}

export interface LiveSnapshot extends LiveIdentity {
  now: LiveSample;
  history: LiveSample[];
  events: LiveEvent[];
  backfillJobs: LiveBackfillJob[];
}

export interface LivePageOptions {
  registry: Registry;
  identity(): LiveIdentity;
  /** Why the daemon is not ready (empty when ready), for the events list. */
  readinessProblems(): Promise<string[]>;
  backfillJobs(): Promise<LiveBackfillJob[]>;
  /** The run-list queries for the explorer; without them the explorer says it has no queries. */
  queries?: QueryRouter;
  sampleEveryMs?: number;
  log: Logger;
}

/** Totals and gauges read from one scrape of the registry. */
interface Reading {
  at: number;
  gauges: Map<string, number>;
  /** Counter totals by `name` and by `name{label}` for labelled counters. */
  totals: Map<string, number>;
  byLabel: Map<string, Map<string, number>>;
}

type MetricJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>[number];

/** The metrics a sample reads. Only these: collecting the whole registry would run every health
 * gauge's own Postgres and ClickHouse queries (health-metrics.ts) for nothing. */
const SAMPLED_METRICS = [
  'runs_cdc_ready',
  'runs_cdc_replication_lag_seconds',
  'runs_cdc_replication_lag_bytes',
  'runs_cdc_changes_received_total',
  'runs_cdc_rows_written_total',
  'runs_cdc_buffered_rows',
  'runs_cdc_buffered_bytes',
  'runs_cdc_clickhouse_retries_total',
  'runs_cdc_reconnects_total',
  'runs_cdc_dead_letters_total',
  'runs_cdc_value_coercions_total',
];

async function read(registry: Registry): Promise<Reading> {
  // Stamped before reading: every value is from this time or later (under load the reads take a while).
  const at = Date.now();
  const metrics = (await Promise.all(SAMPLED_METRICS.map((name) => registry.getSingleMetric(name)?.get()))) as Array<
    MetricJson | undefined
  >;
  const reading: Reading = { at, gauges: new Map(), totals: new Map(), byLabel: new Map() };
  for (const metric of metrics) {
    if (!metric) continue;
    const values = (metric as { values?: { value: number; labels: Record<string, string | number> }[] }).values ?? [];
    if (values.length === 0) continue;
    let sum = 0;
    const labelled = new Map<string, number>();
    for (const v of values) {
      sum += v.value;
      const key = Object.values(v.labels).join('/');
      labelled.set(key, (labelled.get(key) ?? 0) + v.value);
    }
    reading.totals.set(metric.name, sum);
    reading.byLabel.set(metric.name, labelled);
    if (values.length === 1) reading.gauges.set(metric.name, values[0]?.value ?? 0);
  }
  return reading;
}

const rate = (now: Reading, before: Reading | undefined, name: string): number | null => {
  const a = before?.totals.get(name);
  const b = now.totals.get(name);
  if (before === undefined || a === undefined || b === undefined || now.at <= before.at) return null;
  return Math.max(0, ((b - a) * 1000) / (now.at - before.at));
};

/** Samples the registry into a ring buffer and turns counter increases into events. */
export class LiveHistory {
  private readonly samples: LiveSample[] = [];
  private readonly events: LiveEvent[] = [];
  private previous: Reading | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly readinessProblems: () => Promise<string[]>,
    private readonly kept = SAMPLES_KEPT,
  ) {}

  /** Read the registry now; `keep` adds the sample to the history (the periodic ones do). */
  async sample(keep = true): Promise<LiveSample> {
    const now = await read(this.registry);
    const previous = this.previous;
    const gauge = (name: string) => now.gauges.get(name) ?? null;
    const ready = gauge('runs_cdc_ready');
    const sample: LiveSample = {
      at: now.at,
      lagSeconds: gauge('runs_cdc_replication_lag_seconds'),
      lagBytes: gauge('runs_cdc_replication_lag_bytes'),
      changesPerSecond: rate(now, previous, 'runs_cdc_changes_received_total'),
      rowsPerSecond: rate(now, previous, 'runs_cdc_rows_written_total'),
      bufferedRows: gauge('runs_cdc_buffered_rows'),
      bufferedBytes: gauge('runs_cdc_buffered_bytes'),
      ready: ready === null ? null : ready === 1,
    };
    if (!keep) return sample;
    if (previous) await this.noteEvents(now, previous, sample);
    this.previous = now;
    this.samples.push(sample);
    if (this.samples.length > this.kept) this.samples.splice(0, this.samples.length - this.kept);
    return sample;
  }

  private async noteEvents(now: Reading, before: Reading, sample: LiveSample): Promise<void> {
    const grew = (name: string, kind: LiveEvent['kind'], describe: (key: string, n: number) => string) => {
      for (const [key, total] of now.byLabel.get(name) ?? []) {
        const increase = total - (before.byLabel.get(name)?.get(key) ?? 0);
        if (increase > 0) this.push({ at: now.at, kind, detail: describe(key, increase) });
      }
    };
    grew('runs_cdc_clickhouse_retries_total', 'retry', (reason, n) => `${n} ClickHouse ${n === 1 ? 'retry' : 'retries'}: ${reason}`);
    grew('runs_cdc_reconnects_total', 'reconnect', (_, n) => `replication connection lost and reopened (${n}×)`);
    grew('runs_cdc_dead_letters_total', 'dead letter', (_, n) => `${n} ${n === 1 ? 'row' : 'rows'} refused, kept in dead_letters`);
    grew('runs_cdc_value_coercions_total', 'coercion', (_, n) => `${n} ${n === 1 ? 'value' : 'values'} stored as NULL`);
    if (sample.ready === false) {
      const problems = await this.readinessProblems().catch(() => ['readiness could not be checked']);
      this.push({ at: now.at, kind: 'not ready', detail: problems.join('; ') || 'not ready' });
    }
  }

  private push(event: LiveEvent): void {
    this.events.push(event);
    if (this.events.length > EVENTS_KEPT) this.events.splice(0, this.events.length - EVENTS_KEPT);
  }

  history(): LiveSample[] {
    return [...this.samples];
  }

  recentEvents(): LiveEvent[] {
    return [...this.events].reverse();
  }
}

/** Static files of the page, by the path they are served on: a fixed list, nothing else is read. */
const require = createRequire(import.meta.url);
const PAGE_DIR = join(import.meta.dirname, 'page');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/assets/page.js': { file: join(PAGE_DIR, 'page.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/page.css': { file: join(PAGE_DIR, 'page.css'), type: 'text/css; charset=utf-8' },
  '/assets/uplot.js': { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  '/assets/uplot.css': { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

/** Headers of every page response: same-origin scripts only, no sniffing, no framing. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

export interface LivePage {
  /** Answers the request when the path is the page's; false to let the ops server go on. */
  handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<boolean>;
  close(): void;
}

export function startLivePage(options: LivePageOptions): LivePage {
  const history = new LiveHistory(options.registry, options.readinessProblems);
  const sampleNow = () =>
    history.sample().catch((error: unknown) => options.log.debug({ err: (error as Error).message }, 'live page sample failed'));
  void sampleNow();
  const timer = setInterval(sampleNow, options.sampleEveryMs ?? SAMPLE_EVERY_MS);
  timer.unref();
  const files = new Map<string, Buffer>();

  const snapshot = async (): Promise<LiveSnapshot> => ({
    ...options.identity(),
    // The sampler's latest (at most one interval old): a poll does not collect the metrics again.
    now: history.history().at(-1) ?? (await history.sample(false)),
    history: history.history(),
    events: history.recentEvents(),
    backfillJobs: await options.backfillJobs().catch(() => []),
  });

  const handle = async (request: http.IncomingMessage, response: http.ServerResponse): Promise<boolean> => {
    const url = new URL(request.url ?? '/', 'http://ops');
    const asset = ASSETS[url.pathname];
    const kind = queryKindOf(url.pathname);
    if (!asset && !kind && url.pathname !== '/live.json') return false;
    // A whole body with its length, as the request guard sends its own answers (http/server.ts).
    const send = (status: number, type: string, body: string | Buffer) => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      response.writeHead(status, { 'content-type': type, 'content-length': bytes.length, ...PAGE_HEADERS });
      response.end(bytes);
    };
    const json = (status: number, body: unknown) => send(status, 'application/json', JSON.stringify(body));
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      json(405, { error: 'the live page is read-only: use GET' });
      return true;
    }
    if (asset) {
      let body = files.get(url.pathname);
      if (!body) {
        body = readFileSync(asset.file);
        files.set(url.pathname, body);
      }
      send(200, asset.type, body);
      return true;
    }
    if (url.pathname === '/live.json') {
      json(200, await snapshot());
      return true;
    }
    if (!options.queries) {
      json(404, { error: 'this process serves no run-list queries' });
      return true;
    }
    try {
      // The run-list API's own parser: the same names, checks and sentences (queries/params.ts).
      const input = parseQuery(kind as QueryKind, url.searchParams, 'param');
      json(200, await runQuery(options.queries, kind as QueryKind, input));
    } catch (error) {
      if (error instanceof UsageError) json(400, { error: error.message });
      else {
        options.log.warn({ path: url.pathname, err: (error as Error).message }, 'live page query failed');
        json(503, { error: 'the query failed; the daemon log has the detail' });
      }
    }
    return true;
  };

  return { handle, close: () => clearInterval(timer) };
}
