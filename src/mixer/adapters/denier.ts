// `denier`: answers every check with a fixed status (PERMISSION_DENIED by
// default) and denies every quota. Istio's mixer/adapter/denier.

import type { AdapterInfo, CheckResult, ParamError } from './adapter.ts';
import { StatusCode, durationParam, isRecord } from './adapter.ts';

export interface DenierParams {
  readonly status: { readonly code: number; readonly message: string };
  readonly validDurationMs: number;
  readonly validUseCount: number;
}

export const denierAdapter: AdapterInfo<DenierParams> = {
  name: 'denier',
  description: 'Rejects any check and quota request with a configurable status',
  templates: ['checknothing', 'listentry', 'authorization', 'quota'],
  defaultConfig: { status: { code: StatusCode.PERMISSION_DENIED, message: 'Not allowed' }, validDurationMs: 5000, validUseCount: 1000 },
  validate(raw) {
    const errors: ParamError[] = [];
    const d = denierAdapter.defaultConfig;
    const status = raw.status ?? {};
    if (!isRecord(status)) errors.push({ path: 'status', message: 'must be an object with code and message' });
    const s = isRecord(status) ? status : {};
    const code = s.code ?? d.status.code;
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 16) errors.push({ path: 'status.code', message: 'must be a gRPC status code 0..16' });
    const message = s.message ?? (code === d.status.code ? d.status.message : '');
    if (typeof message !== 'string') errors.push({ path: 'status.message', message: 'must be a string' });
    const validDurationMs = raw.validDuration === undefined ? d.validDurationMs : durationParam(raw.validDuration);
    if (validDurationMs === undefined) errors.push({ path: 'validDuration', message: 'must be a duration such as "5s"' });
    const validUseCount = raw.validUseCount ?? d.validUseCount;
    if (typeof validUseCount !== 'number' || !Number.isInteger(validUseCount) || validUseCount < 0) errors.push({ path: 'validUseCount', message: 'must be a non-negative integer' });
    if (errors.length > 0) return { errors };
    return { params: { status: { code: code as number, message: message as string }, validDurationMs: validDurationMs!, validUseCount: validUseCount as number }, errors };
  },
  build(params) {
    const result: CheckResult = Object.freeze({ code: params.status.code, message: params.status.message, validDurationMs: params.validDurationMs, validUseCount: params.validUseCount });
    return {
      handleCheck: () => result,
      handleQuota: () => ({ granted: 0, validDurationMs: 0 }),
      close() {},
    };
  },
};
