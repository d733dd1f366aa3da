// `stdio`: writes logentry and metric instances as structured lines (JSON by
// default) to standard out or standard error. Istio's mixer/adapter/stdio.

import { formatValue } from '../../api/index.ts';
import type { AttributeValue } from '../../api/index.ts';
import type { AdapterInfo, Instance, ParamError } from './adapter.ts';
import { isRecord } from './adapter.ts';

const LEVELS = ['INFO', 'WARNING', 'ERROR'] as const;
type Level = (typeof LEVELS)[number];

export interface StdioParams {
  readonly logStream: 'STDOUT' | 'STDERR';
  /** logentry severity text -> level (`Default: INFO`, `Error: ERROR`). */
  readonly severityLevels: Readonly<Record<string, Level>>;
  readonly metricLevel: Level;
  /** Lines below this level are dropped. */
  readonly outputLevel: Level;
  readonly outputAsJson: boolean;
}

export const stdioAdapter: AdapterInfo<StdioParams> = {
  name: 'stdio',
  description: 'Writes log entries and metrics to standard output or error',
  templates: ['logentry', 'metric'],
  defaultConfig: { logStream: 'STDERR', severityLevels: {}, metricLevel: 'INFO', outputLevel: 'INFO', outputAsJson: true },
  validate(raw) {
    const errors: ParamError[] = [];
    const d = stdioAdapter.defaultConfig;
    const logStream = raw.logStream ?? d.logStream;
    if (logStream !== 'STDOUT' && logStream !== 'STDERR') errors.push({ path: 'logStream', message: 'must be STDOUT or STDERR' });
    const severityLevels = raw.severityLevels ?? d.severityLevels;
    if (!isRecord(severityLevels)) errors.push({ path: 'severityLevels', message: 'must map severities to INFO, WARNING or ERROR' });
    else for (const [k, v] of Object.entries(severityLevels)) if (!LEVELS.includes(v as Level)) errors.push({ path: `severityLevels.${k}`, message: 'must be INFO, WARNING or ERROR' });
    for (const key of ['metricLevel', 'outputLevel'] as const) {
      const v = raw[key] ?? d[key];
      if (!LEVELS.includes(v as Level)) errors.push({ path: key, message: 'must be INFO, WARNING or ERROR' });
    }
    const outputAsJson = raw.outputAsJson ?? d.outputAsJson;
    if (typeof outputAsJson !== 'boolean') errors.push({ path: 'outputAsJson', message: 'must be true or false' });
    if (raw.outputPath !== undefined) errors.push({ path: 'outputPath', message: 'writing to a file is not supported; use logStream' });
    if (errors.length > 0) return { errors };
    return {
      params: {
        logStream: logStream as StdioParams['logStream'],
        severityLevels: severityLevels as Record<string, Level>,
        metricLevel: (raw.metricLevel ?? d.metricLevel) as Level,
        outputLevel: (raw.outputLevel ?? d.outputLevel) as Level,
        outputAsJson: outputAsJson as boolean,
      },
      errors,
    };
  },
  build(params, env) {
    const stream = params.logStream === 'STDOUT' ? 'stdout' : 'stderr';
    const minLevel = LEVELS.indexOf(params.outputLevel);
    const emit = (level: Level, entry: Record<string, unknown>): void => {
      if (LEVELS.indexOf(level) < minLevel) return;
      const line = { level: level.toLowerCase(), ...entry };
      env.write(stream, params.outputAsJson ? JSON.stringify(line) : Object.entries(line).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('\t'));
    };
    return {
      handleReport(instances: readonly Instance[]) {
        for (const inst of instances) {
          if (inst.template === 'logentry') {
            const severity = inst.fields.severity === undefined ? 'Default' : formatValue(inst.fields.severity as AttributeValue);
            const level = params.severityLevels[severity] ?? (/^err/i.test(severity) ? 'ERROR' : /^warn/i.test(severity) ? 'WARNING' : 'INFO');
            const time = inst.fields.timestamp instanceof Date ? inst.fields.timestamp : new Date(env.now());
            emit(level, { time: time.toISOString(), instance: inst.name, ...plain(inst.fields.variables) });
          } else if (inst.template === 'metric') {
            emit(params.metricLevel, { time: new Date(env.now()).toISOString(), instance: inst.name, value: plainValue(inst.fields.value as AttributeValue | undefined), ...plain(inst.fields.dimensions) });
          }
        }
      },
      close() {},
    };
  },
};

function plainValue(v: AttributeValue | undefined): unknown {
  if (v === undefined) return undefined;
  return typeof v === 'number' || typeof v === 'boolean' ? v : formatValue(v);
}

function plain(map: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (map instanceof Map) for (const [k, v] of map as Map<string, AttributeValue>) out[k] = plainValue(v);
  return out;
}
