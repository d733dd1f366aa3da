// Public surface of Galley's analysis (`mesh analyze`): run the analyzers over
// config objects, list them, and print their messages.
export type { AnalysisMessage, Analyzer, Report } from './analyzer.ts';
export type { AnalyzeOptions } from './analyze.ts';
export { analyze } from './analyze.ts';
export { allAnalyzers, listAnalyzers } from './analyzers/index.ts';
export { AnalysisContext } from './context.ts';
export type { MeshService, Workload, AnalysisContextOptions } from './context.ts';
export type { AnalysisLevel, MessageType } from './messages.ts';
export { MessageTypes, allMessageTypes, documentationUrl } from './messages.ts';
export type { AnalysisMessageJson } from './format.ts';
export { formatAnalysis, formatMessage, analysisToJson } from './format.ts';
