import { describe, expect, it } from 'vitest';
import { demoCommand } from '../../src/cli/demo.ts';
import { ConfigError, isRetryable, PreflightError, RunsCdcError, SinkFatalError, StreamError } from '../../src/errors.ts';
import { ConnectionLostError, SlotInUseError } from '../../src/replication/connection.ts';
import { MemorySink } from '../../src/sink/memory-sink.ts';
import { RunsTargets } from '../../src/sink/targets.ts';

describe('the error taxonomy: actionable and retryable are separate questions', () => {
  it('errors a person must act on first are not retryable', () => {
    for (const error of [new ConfigError('x'), new PreflightError('x'), new SinkFatalError('x'), new StreamError('x')]) {
      expect(error).toBeInstanceOf(RunsCdcError);
      expect(isRetryable(error)).toBe(false);
    }
  });

  it('a dropped connection and a taken slot are runs-cdc errors and still retryable', () => {
    for (const error of [new ConnectionLostError('x'), new SlotInUseError('x')]) {
      expect(error).toBeInstanceOf(RunsCdcError);
      expect(isRetryable(error)).toBe(true);
    }
  });

  it('an error runs-cdc did not raise (a refused connection) is presumed transient', () => {
    expect(isRetryable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
  });
});

describe('configuration mistakes are ConfigErrors (one sentence, no stack)', () => {
  it('demo --runs 0', async () => {
    const command = demoCommand().exitOverride();
    await expect(command.parseAsync(['--runs', '0'], { from: 'user' })).rejects.toThrow(ConfigError);
  });

  it('an organization routed to a target that does not exist', () => {
    expect(() => new RunsTargets(new MemorySink(), { targets: new Map(), organizations: { org_eu: 'eu' } })).toThrow(ConfigError);
  });
});
