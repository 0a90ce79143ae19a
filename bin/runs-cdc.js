#!/usr/bin/env node
// Runs the compiled CLI (`npm run build` writes dist/; `npm install` in a clone runs it). Node runs
// it in this very process, so a supervisor's SIGTERM reaches the daemon itself.
try {
  await import('../dist/cli/index.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('/dist/cli/index.js')) throw error;
  process.stderr.write('runs-cdc: this checkout is not built (no dist/): run npm run build\n');
  process.exit(2);
}
