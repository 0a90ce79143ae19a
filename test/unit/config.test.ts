import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

describe('config', () => {
  it('has defaults for everything but the URLs', () => {
    const config = loadConfig({}, {});
    expect(config).toMatchObject({ slot: 'runs_cdc', publication: 'runs_cdc', flushGroups: 'sequential', batchRows: 10_000 });
    expect(config.databaseUrl).toBeUndefined();
  });

  it('reads the environment and lets flags win', () => {
    const config = loadConfig(
      { batchRows: '50' },
      { RUNS_CDC_BATCH_ROWS: '20', RUNS_CDC_FLUSH_INTERVAL_MS: '75', RUNS_CDC_FIX_REPLICA_IDENTITY: 'true' },
    );
    expect(config).toMatchObject({ batchRows: 50, flushIntervalMs: 75, fixReplicaIdentity: true });
  });

  it('names the flag, the variable and the bad value in one line per problem', () => {
    let error: unknown;
    try {
      loadConfig({ batchRows: '-3' }, { DATABASE_URL: 'mysql://x', RUNS_CDC_SLOT: 'bad-name' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('--batch-rows (RUNS_CDC_BATCH_ROWS)');
    expect(message).toContain('--database-url (DATABASE_URL): must be a postgres:// URL (got "mysql://x")');
    expect(message).toContain('--slot (RUNS_CDC_SLOT): must be lower-case letters, digits and underscores');
  });

  it.each([
    ['UPPER', 'must be lower-case letters'],
    ['s'.repeat(64), 'must be at most 63 characters'],
  ])('refuses slot name %s as Postgres would, never cutting it', (slot, message) => {
    expect(() => loadConfig({ slot }, {})).toThrow(message);
  });

  it('accepts what Postgres accepts in a slot name', () => {
    expect(loadConfig({ slot: `1${'s'.repeat(62)}` }, {}).slot).toHaveLength(63);
  });

  it('never echoes a token', () => {
    expect(() => loadConfig({ apiToken: 'short-secret' }, {})).toThrow(
      /--api-token \(RUNS_CDC_API_TOKEN\): must be at least 16 characters$/,
    );
  });

  it('hides passwords when echoing a bad URL', () => {
    expect(() => loadConfig({}, { CLICKHOUSE_URL: 'ftp://user:secret@host' })).toThrow(/ftp:\/\/user:\*\*\*@host/);
  });

  it('rejects contradictory identity flags', () => {
    expect(() => loadConfig({ fixReplicaIdentity: true, allowPartialIdentity: true }, {})).toThrow('contradict');
  });
});

describe('identifiers from configuration', () => {
  it.each([
    ['slot', "runs'; DROP TABLE x; --", '--slot (RUNS_CDC_SLOT)'],
    ['publication', 'pub"name', '--publication (RUNS_CDC_PUBLICATION)'],
    ['clickhouseDatabase', 'db;drop', '--clickhouse-database (CLICKHOUSE_DATABASE)'],
    ['clickhouseCluster', "c'1", '--cluster (CLICKHOUSE_CLUSTER)'],
  ])('rejects a %s with a quote or semicolon before it could reach SQL', (key, value, where) => {
    expect(() => loadConfig({ [key]: value }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value }, {})).toThrow(`${where}: `);
  });
});

describe('--routes', () => {
  it('reads targets and organizations from JSON', () => {
    const config = loadConfig(
      { routes: '{"targets":{"eu":{"url":"http://u:p@eu:8123","database":"runs_eu"}},"organizations":{"org_1":"eu"}}' },
      {},
    );
    expect(config.routes).toEqual({ targets: { eu: { url: 'http://u:p@eu:8123', database: 'runs_eu' } }, organizations: { org_1: 'eu' } });
  });

  it.each([
    ['not json', 'must be JSON like'],
    ['{"targets":{},"organizations":{"org_1":"eu"}}', 'every organization must be routed to a target listed under "targets"'],
    ['{"targets":{"e-u":{}},"organizations":{}}', 'a target name must be letters'],
    ['{"targets":{"default":{"database":"other"}},"organizations":{"org_1":"default"}}', 'the target name "default" is taken'],
    ['{"targets":{"eu":{"url":"ftp://x:secret@h"}},"organizations":{}}', 'must be an http(s):// URL'],
  ])('rejects %s with a sentence naming --routes, and no password', (value, message) => {
    let error: unknown;
    try {
      loadConfig({ routes: value }, {});
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).toContain('--routes (RUNS_CDC_ROUTES)');
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain('secret');
  });
});
