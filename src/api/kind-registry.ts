// The kinds the mesh understands, found by group and kind. Each kind declares the
// versions it accepts (newest first), a structural schema and its semantic rules.

import type { z } from 'zod';
import type { Diagnostics, FieldPath } from './diagnostics.ts';
import type { ConfigObject } from './object.ts';
import { groupOf, versionOf } from './object.ts';

/** What a semantic validator sees: the object, where to report, and the path of `spec`. */
export interface ValidationContext {
  readonly object: ConfigObject;
  readonly diag: Diagnostics;
  /** The path of the spec, `spec`; child paths are built from it. */
  readonly path: FieldPath;
}

/**
 * One config kind. Contract: `spec` rejects unknown fields and wrong types;
 * `validate` runs only on a spec the schema accepted and reports every
 * semantic problem into ctx.diag (it never throws on bad input).
 */
export interface KindDefinition<Spec = any> {
  readonly group: string;
  readonly kind: string;
  /** Accepted versions, newest first. The newest one names the Istio type URL. */
  readonly versions: readonly string[];
  /** Lower-case plural, as `kubectl get` takes it. */
  readonly plural: string;
  readonly shortNames?: readonly string[];
  /** True for kinds without a namespace (none of Istio's today). */
  readonly clusterScoped?: boolean;
  readonly spec: z.ZodType<Spec>;
  readonly validate?: (spec: Spec, ctx: ValidationContext) => void;
  /**
   * Kubernetes core kinds (Secret) carry their content beside `metadata`, not
   * under `spec`. These top-level fields are validated as the spec (paths
   * without a `spec.` prefix) and stored in the spec slot; kubernetesForm()
   * puts them back where Kubernetes has them.
   */
  readonly topLevelFields?: readonly string[];
  /** The stored form of a valid spec (a Secret's stringData folded into data); default: as written. */
  readonly normalize?: (spec: Spec) => unknown;
  /** Why an object of this kind is passed over like other Kubernetes kinds (a Secret that is no TLS credential); undefined to accept it. */
  readonly passOver?: (object: Record<string, unknown>) => string | undefined;
}

/** An object as Kubernetes shows it: for kinds with topLevelFields, the stored spec spread beside metadata. */
export function kubernetesForm(obj: ConfigObject, def: Pick<KindDefinition, 'topLevelFields'> | undefined): Record<string, unknown> {
  if (!def?.topLevelFields) return obj as unknown as Record<string, unknown>;
  const { spec, ...rest } = obj;
  return { ...rest, ...(spec as Record<string, unknown>) };
}

/** `networking.istio.io/v1/VirtualService`: the name a kind has on the wire (Galley over xDS). */
export function istioTypeUrl(def: Pick<KindDefinition, 'group' | 'versions' | 'kind'>): string {
  return `${def.group}/${def.versions[0]}/${def.kind}`;
}

export class KindRegistry {
  private readonly byGroupKind = new Map<string, KindDefinition>();

  constructor(defs: readonly KindDefinition[] = []) {
    for (const def of defs) this.register(def);
  }

  /** A kind registered twice is a programming error, found at start-up. */
  register(def: KindDefinition): void {
    const key = `${def.group}/${def.kind}`;
    if (this.byGroupKind.has(key)) throw new Error(`kind ${key} is registered twice`);
    this.byGroupKind.set(key, def);
  }

  all(): KindDefinition[] {
    return [...this.byGroupKind.values()];
  }

  get(group: string, kind: string): KindDefinition | undefined {
    return this.byGroupKind.get(`${group}/${kind}`);
  }

  /** The kind of an apiVersion + kind pair, or undefined when the version is not accepted. */
  forObject(apiVersion: string, kind: string): KindDefinition | undefined {
    const def = this.get(groupOf(apiVersion), kind);
    return def && def.versions.includes(versionOf(apiVersion)) ? def : undefined;
  }

  /** Finds a kind by what a user types: `virtualservice`, `virtualservices`, `vs`, `VirtualService.networking.istio.io`. */
  resolve(name: string): KindDefinition | undefined {
    const lower = name.toLowerCase();
    const dot = lower.indexOf('.');
    const bare = dot < 0 ? lower : lower.slice(0, dot);
    const group = dot < 0 ? undefined : lower.slice(dot + 1);
    for (const def of this.byGroupKind.values()) {
      if (group !== undefined && def.group !== group) continue;
      if (def.kind.toLowerCase() === bare || def.plural === bare || def.shortNames?.includes(bare)) return def;
    }
    return undefined;
  }

  byTypeUrl(typeUrl: string): KindDefinition | undefined {
    for (const def of this.byGroupKind.values()) if (istioTypeUrl(def) === typeUrl) return def;
    return undefined;
  }
}
