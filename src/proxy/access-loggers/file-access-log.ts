// envoy.access_loggers.file: access log lines in the default format to a
// file (or /dev/stdout), through one buffered stream per path.

import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { TYPE_URL_PREFIX } from '../../xds/index.ts';
import { formatDefault } from '../access-log.ts';
import { configError } from '../errors.ts';
import type { AccessLoggerExtension } from '../registry.ts';

const streams = new Map<string, Writable>();

function streamFor(path: string): Writable {
  if (path === '/dev/stdout') return process.stdout;
  if (path === '/dev/stderr') return process.stderr;
  let s = streams.get(path);
  if (!s) streams.set(path, (s = createWriteStream(path, { flags: 'a' })));
  return s;
}

/** envoy.extensions.access_loggers.file.v3.FileAccessLog with the default format. */
export const fileAccessLogExtension: AccessLoggerExtension = {
  typeUrl: `${TYPE_URL_PREFIX}envoy.extensions.access_loggers.file.v3.FileAccessLog`,
  category: 'access_log',
  create(config: { path: string; access_log_format?: string }, _ctx, path) {
    if (!config.path) throw configError(`${path}.path`, 'must not be empty');
    if (config.access_log_format) throw configError(`${path}.${config.access_log_format}`, 'only the default access log format is supported');
    const out = streamFor(config.path);
    return { logger: { log: (e) => void out.write(formatDefault(e)) } };
  },
};
