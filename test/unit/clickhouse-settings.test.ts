import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { SESSION_SETTINGS, timeoutSettings } from '../../src/sink/clickhouse.ts';

describe('timeouts', () => {
  it.each([20_000, 60_000, 300_000, 3_600_000])('the server stops a query before the client gives up (request timeout %i ms)', (ms) => {
    const settings = timeoutSettings(ms);
    expect(Number(settings.max_execution_time) * 1000).toBeLessThan(ms);
    expect(Number(settings.distributed_ddl_task_timeout) * 1000).toBeLessThan(ms);
    expect(settings.cancel_http_readonly_queries_on_client_close).toBe(1);
    expect(settings.send_progress_in_http_headers).toBe(1);
    // At most ~50 progress headers per request: Node refuses responses with over 16 KiB of headers.
    expect(ms / Number(settings.http_headers_progress_interval_ms)).toBeLessThanOrEqual(51);
  });

  it('a run-list timeout must be shorter than the request timeout', () => {
    expect(() => loadConfig({ queryTimeoutSeconds: '300' }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ queryTimeoutSeconds: '300' }, {})).toThrow(
      /--query-timeout must be shorter than --clickhouse-request-timeout/,
    );
    expect(loadConfig({ queryTimeoutSeconds: '300' }, { CLICKHOUSE_REQUEST_TIMEOUT: '600' }).clickhouseRequestTimeoutSeconds).toBe(600);
  });

  it('inserts are pinned synchronous whatever the profile says', () => {
    expect(SESSION_SETTINGS).toMatchObject({ async_insert: 0, wait_for_async_insert: 1 });
  });
});
