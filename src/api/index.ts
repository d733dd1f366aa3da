// Public surface of the config API: Istio's kinds, parsing and validation.
export type { ConfigObject, ObjectMeta, ObjectKey, SourceLocation } from './object.ts';
export { keyOf, keyString, describeObject, groupOf, versionOf } from './object.ts';
export type { Diagnostic, Severity } from './diagnostics.ts';
export { Diagnostics, FieldPath, at } from './diagnostics.ts';
export type { KindDefinition, ValidationContext } from './kind-registry.ts';
export { KindRegistry, istioTypeUrl } from './kind-registry.ts';
export { istioKinds, createKindRegistry } from './kinds/index.ts';
export type { ValidationResult, ValidateOptions } from './validate.ts';
export { validateObject, hasErrors, formatDiagnostic } from './validate.ts';
export type { ParsedDocument } from './parse.ts';
export { parseDocuments, validateText, pathSegments } from './parse.ts';
export { ApiError, ApiErrorCode } from './errors.ts';
export type { MeshConfig, ProxyConfig, ExtensionProvider, MeshConfigResult } from './mesh-config.ts';
export { defaultMeshConfig, parseMeshConfig, validateMeshConfig, meshConfigSchema } from './mesh-config.ts';
export type { VirtualServiceSpec, DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, SidecarSpec, WorkloadEntrySpec, WorkloadGroupSpec } from './kinds/networking/index.ts';
export type { AttributeValue, ValueType, AttributeSource, CompiledExpression, CompileOptions, CompileResult, ExprType, TemplateField, TemplateShape, TemplateVariety, CompiledParams, ParamProblem } from './cexl/index.ts';
export { ATTRIBUTE_VALUE_TYPES, BUILTIN_ATTRIBUTES, AttributeVocabulary, compileExpression, mustCompile, assignable, canonicalIp, globMatch, parseDurationMs, formatValue, TEMPLATES, compileInstanceParams } from './cexl/index.ts';
