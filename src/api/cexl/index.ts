// CEXL: Mixer's attribute vocabulary, expression compiler and template shapes.
export type { AttributeValue, ValueType } from './vocabulary.ts';
export { ATTRIBUTE_VALUE_TYPES, BUILTIN_ATTRIBUTES, BUILTIN_ROOTS, AttributeVocabulary } from './vocabulary.ts';
export type { AttributeSource, CompiledExpression, CompileOptions, CompileResult, ExprType } from './compiler.ts';
export { compileExpression, mustCompile, assignable, rewriteDefaultOperator, canonicalIp, globMatch, parseDurationMs, formatValue } from './compiler.ts';
export type { TemplateField, TemplateShape, TemplateVariety, CompiledParams, ParamProblem } from './templates.ts';
export { TEMPLATES, compileInstanceParams } from './templates.ts';
