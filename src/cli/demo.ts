import { Command } from 'commander';
import { runDemo } from '../demo/run-demo.ts';
import { UsageError } from '../errors.ts';
import { createLogger } from '../logger.ts';

export function demoCommand(): Command {
  return new Command('demo')
    .description('start embedded Postgres + chDB, write runs, replicate them, query ClickHouse')
    .option('--runs <n>', 'runs written per table', '2000')
    .option('--json', 'print the figures as one JSON line at the end')
    .action(async (options: { runs: string; json?: boolean }) => {
      const runs = Number(options.runs);
      if (!Number.isInteger(runs) || runs < 1)
        throw new UsageError(`--runs must be a positive integer (got ${JSON.stringify(options.runs)})`);
      const report = await runDemo(runs, createLogger(process.env.LOG_LEVEL ?? 'warn'), (line) => process.stdout.write(`${line}\n`));
      if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      if (!report.equal) process.exitCode = 1;
    });
}
