// Ingestion gated by validation: a batch of objects is validated as a whole and
// only written when every object is valid, so a bad apply changes nothing.

import type { ConfigObject, KindRegistry, ValidationResult } from '../api/index.ts';
import { ApiError, ApiErrorCode, describeObject, formatDiagnostic, hasErrors, validateObject } from '../api/index.ts';
import type { ApplyResult, ConfigStore } from './config-store.ts';

export interface IngestOptions {
  readonly dryRun?: boolean;
  readonly defaultNamespace?: string;
}

export interface IngestOutcome {
  /** One entry per applied Istio object, in input order. */
  readonly applied: ApplyResult[];
  /** Kubernetes kinds passed over, with the note saying so. */
  readonly ignored: ValidationResult[];
  /** Warnings of the applied objects (errors abort the batch). */
  readonly warnings: string[];
}

/** Thrown when any object of a batch is invalid; carries every object's diagnostics. */
export class ValidationFailedError extends ApiError {
  readonly results: readonly ValidationResult[];
  constructor(results: readonly ValidationResult[]) {
    const lines = results.flatMap((r) => r.diagnostics.filter((d) => d.severity === 'error').map((d) => formatDiagnostic(r, d)));
    super(ApiErrorCode.INVALID, `config rejected, nothing was changed:\n${lines.join('\n')}`);
    this.results = results;
  }
}

/**
 * Validates `inputs` (raw objects or results of validateText) and, when all are
 * valid, applies them in order. Results that came from text keep their file/line.
 */
export async function ingest(store: ConfigStore, registry: KindRegistry, inputs: readonly (unknown | ValidationResult)[], options: IngestOptions = {}): Promise<IngestOutcome> {
  const results = inputs.map((input) => (isValidationResult(input) ? input : validateObject(input, registry, { defaultNamespace: options.defaultNamespace })));
  const invalid = results.filter(hasErrors);
  if (invalid.length > 0) throw new ValidationFailedError(invalid);
  const applied: ApplyResult[] = [];
  const warnings: string[] = [];
  for (const result of results) {
    if (result.ignored) continue;
    for (const d of result.diagnostics) warnings.push(formatDiagnostic(result, d));
    applied.push(await store.apply(result.object as ConfigObject, { dryRun: options.dryRun }));
  }
  return { applied, ignored: results.filter((r) => r.ignored !== undefined), warnings };
}

function isValidationResult(value: unknown): value is ValidationResult {
  return typeof value === 'object' && value !== null && 'diagnostics' in value && 'object' in value;
}

export function describeApply(result: ApplyResult, dryRun = false): string {
  return `${describeObject(result.object)} ${result.action}${dryRun ? ' (dry run)' : ''}`;
}
