import { Command } from 'commander';
import { runDemo } from '../demo/run-demo.ts';
import { ConfigError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { onStopSignals } from './runtime.ts';

export function demoCommand(): Command {
  return new Command('demo')
    .description('start embedded Postgres + chDB, write runs, replicate them, query ClickHouse')
    .option('--runs <n>', 'runs written per table', '2000')
    .option('--json', 'print the figures as one JSON line at the end')
    .option('--serve', 'then keep replicating a trickle of runs and serve the live page until Ctrl-C')
    .option('--port <n>', 'port of the live page with --serve (0: any free port)', '9464')
    .action(async (options: { runs: string; json?: boolean; serve?: boolean; port: string }) => {
      const runs = Number(options.runs);
      if (!Number.isInteger(runs) || runs < 1)
        throw new ConfigError(`--runs must be a positive integer (got ${JSON.stringify(options.runs)})`);
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError(`--port must be a port number (got ${options.port})`);
      let off = () => {};
      const until = new Promise<void>((resolve) => {
        if (options.serve) off = onStopSignals(() => resolve());
      });
      const serve = options.serve ? { port, until } : undefined;
      const report = await runDemo(runs, createLogger(process.env.LOG_LEVEL ?? 'warn'), (line) => process.stdout.write(`${line}\n`), serve);
      off();
      if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      if (!report.equal) process.exitCode = 1;
    });
}
