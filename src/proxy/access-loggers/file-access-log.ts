// envoy.access_loggers.file / stdout / stderr: access log lines in Envoy's
// default format, a custom text format or a JSON dictionary (format,
// json_format, log_format), through one buffered sink per path. Lines are
// gathered in memory and written once per event-loop turn (or at 64 KiB), so
// the hot path never waits on the disk or a blocking stdout.

import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { TYPE_URL_PREFIX } from '../../xds/index.ts';
import { formatDefault } from '../access-log.ts';
import type { AccessLogEntry, AccessLogger } from '../access-log.ts';
import { configError } from '../errors.ts';
import type { AccessLoggerExtension } from '../registry.ts';
import { plainStruct } from '../config/typed-struct.ts';
import type { AccessLogFormatter } from './substitution-format.ts';
import { jsonFormatter, textFormatter } from './substitution-format.ts';

const FLUSH_BYTES = 64 * 1024;

/** Lines for one destination, written in batches; write errors are counted, never thrown. */
export class BufferedSink {
  private buffer = '';
  private scheduled = false;
  private readonly out: Writable;
  /** Lines dropped because the stream failed. */
  dropped = 0;
  private failed = false;

  constructor(out: Writable) {
    this.out = out;
    out.on('error', () => (this.failed = true));
  }

  write(line: string): void {
    if (this.failed) {
      this.dropped++;
      return;
    }
    this.buffer += line;
    if (this.buffer.length >= FLUSH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (!this.buffer) return;
    const chunk = this.buffer;
    this.buffer = '';
    this.out.write(chunk);
  };
}

const sinks = new Map<string, BufferedSink>();

/** The shared sink for a path (/dev/stdout and /dev/stderr are the process's streams). */
export function sinkFor(path: string): BufferedSink {
  let s = sinks.get(path);
  if (!s) {
    const out = path === '/dev/stdout' ? process.stdout : path === '/dev/stderr' ? process.stderr : createWriteStream(path, { flags: 'a' });
    sinks.set(path, (s = new BufferedSink(out)));
  }
  return s;
}

/** Writes every buffered line now (tests, shutdown). */
export function flushAccessLogs(): void {
  for (const s of sinks.values()) s.flush();
}

type D = Record<string, any>;

/** SubstitutionFormatString (log_format) -> formatter; undefined means Envoy's default format. */
export function decodeLogFormat(f: D | null | undefined, path: string): AccessLogFormatter | undefined {
  if (!f) return undefined;
  switch (f.format) {
    case 'text_format':
      return textFormatter(f.text_format, `${path}.text_format`);
    case 'text_format_source':
      if (f.text_format_source?.specifier !== 'inline_string') throw configError(`${path}.text_format_source`, 'only inline_string is supported');
      return textFormatter(f.text_format_source.inline_string, `${path}.text_format_source.inline_string`);
    case 'json_format':
      return jsonFormatter(plainStruct(f.json_format), `${path}.json_format`, f.omit_empty_values === true);
    default:
      return undefined;
  }
}

/** The formatter of a FileAccessLog / StdoutAccessLog config (any of its format fields). */
export function formatterOf(config: D, path: string): AccessLogFormatter | undefined {
  switch (config.access_log_format) {
    case 'format':
      return config.format ? textFormatter(config.format, `${path}.format`) : undefined;
    case 'json_format':
      return jsonFormatter(plainStruct(config.json_format), `${path}.json_format`);
    case 'typed_json_format':
      return jsonFormatter(plainStruct(config.typed_json_format), `${path}.typed_json_format`);
    case 'log_format':
      return decodeLogFormat(config.log_format, `${path}.log_format`);
    default:
      return undefined;
  }
}

function logger(sink: BufferedSink, formatter: AccessLogFormatter | undefined): AccessLogger {
  if (!formatter) return { log: (e: AccessLogEntry) => sink.write(formatDefault(e)) };
  return { log: (e: AccessLogEntry) => sink.write(formatter.format(e)) };
}

/** envoy.extensions.access_loggers.file.v3.FileAccessLog. */
export const fileAccessLogExtension: AccessLoggerExtension = {
  typeUrl: `${TYPE_URL_PREFIX}envoy.extensions.access_loggers.file.v3.FileAccessLog`,
  category: 'access_log',
  create(config: D, _ctx, path) {
    if (!config.path) throw configError(`${path}.path`, 'must not be empty');
    return { logger: logger(sinkFor(config.path), formatterOf(config, path)) };
  },
};

/** envoy.extensions.access_loggers.stream.v3.StdoutAccessLog. */
export const stdoutAccessLogExtension: AccessLoggerExtension = {
  typeUrl: `${TYPE_URL_PREFIX}envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`,
  category: 'access_log',
  create(config: D, _ctx, path) {
    return { logger: logger(sinkFor('/dev/stdout'), config.access_log_format === 'log_format' ? decodeLogFormat(config.log_format, `${path}.log_format`) : undefined) };
  },
};

/** envoy.extensions.access_loggers.stream.v3.StderrAccessLog. */
export const stderrAccessLogExtension: AccessLoggerExtension = {
  typeUrl: `${TYPE_URL_PREFIX}envoy.extensions.access_loggers.stream.v3.StderrAccessLog`,
  category: 'access_log',
  create(config: D, _ctx, path) {
    return { logger: logger(sinkFor('/dev/stderr'), config.access_log_format === 'log_format' ? decodeLogFormat(config.log_format, `${path}.log_format`) : undefined) };
  },
};
