// Building blocks of the structural schemas (zod). Objects are strict: an
// unknown field is an error naming it, as `istioctl validate` reports.

import { z } from 'zod';

export { z };

export const strict = z.strictObject;
export const stringMap = z.record(z.string(), z.string());
export const uint32 = z.number().int().min(0).max(4294967295);
export const int32 = z.number().int().min(-2147483648).max(2147483647);
/** Durations are strings like `1.5s`; their syntax is checked semantically (validators.ts). */
export const duration = z.string();
/** google.protobuf wrapper types accept the bare value in JSON/YAML. */
export const boolValue = z.boolean();
/** A percentage as Istio's `Percent` message: `{ value: 12.5 }`. */
export const percent = strict({ value: z.number() });
export const workloadSelector = strict({ matchLabels: stringMap.optional() });
export const portSelector = strict({ number: uint32 });
