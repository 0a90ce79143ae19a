/** The settings the replication daemon reads: a slice of the one config (config.ts). */
import type { Config } from '../config.ts';

export type DaemonSettings = Pick<
  Config,
  | 'slot'
  | 'publication'
  | 'batchRows'
  | 'batchBytes'
  | 'flushIntervalMs'
  | 'maxBufferedRows'
  | 'maxBufferedBytes'
  | 'flushGroups'
  | 'fixReplicaIdentity'
  | 'allowPartialIdentity'
  | 'onTruncate'
  | 'standbyRetryMs'
  | 'statusIntervalMs'
  | 'retryInitialMs'
  | 'retryMaxMs'
  | 'heartbeatIntervalMs'
>;
