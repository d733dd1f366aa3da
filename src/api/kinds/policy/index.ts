// config.istio.io/v1alpha2 kinds (Mixer's handler, instance, rule, ...).
import type { KindDefinition } from '../../kind-registry.ts';
import { adapterKind } from './adapter.ts';
import { attributeManifestKind } from './attribute-manifest.ts';
import { handlerKind } from './handler.ts';
import { instanceKind } from './instance.ts';
import { quotaSpecBindingKind } from './quota-spec-binding.ts';
import { quotaSpecKind } from './quota-spec.ts';
import { ruleKind } from './rule.ts';

export const policyKinds: KindDefinition[] = [handlerKind, adapterKind, instanceKind, ruleKind, attributeManifestKind, quotaSpecKind, quotaSpecBindingKind];
