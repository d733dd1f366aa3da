// Public surface of the shared xDS plumbing: Envoy's protos, type URLs, Any helpers.
export type { XdsProtos, ProtoRoot, ProtoType } from './protos.ts';
export { loadXdsProtos, xdsIncludeDirs, typeNameOf, ADS_PROTO_FILES, DEFAULT_XDS_PROTO_FILES, XDS_CONVERSION_OPTIONS } from './protos.ts';
export { TYPE_URL_PREFIX, TypeUrl, XDS_SHORT_NAMES, ADS_SERVICE, typeUrlOf } from './type-urls.ts';
export type {
  AnyMessage,
  StatusMessage,
  NodeMessage,
  DiscoveryRequest,
  DiscoveryResponse,
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DeltaResource,
} from './discovery-messages.ts';
export { packAny, packMessage, unpackMessage, packJsonAny, unpackJsonAny } from './any.ts';
export { CA_SERVICE, loadCaService } from './ca-service.ts';
export type { IstioCertificateRequest, IstioCertificateResponse, CaServiceProtos } from './ca-service.ts';
export { ProtoWriter, varintSize, zigzag32, fieldSize, WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES } from './proto-writer.ts';
export { ProtoReader } from './proto-reader.ts';
export { GLOBAL_WORDS, GLOBAL_WORD_INDEX } from './mixer-global-dictionary.ts';
export {
  MIXER_SERVICE,
  MIXER_REPORT_PATH,
  DELTA_ENCODING,
  INDEPENDENT_ENCODING,
  mixerReportProtos,
  mixerReportServiceDefinition,
  mixerReportClient,
  encodeReportRequest,
  encodeReport,
  encodeReports,
  ReportEncoder,
  REPORT_REQUEST_FIELDS,
  ATTRIBUTE_FIELDS,
  ipBytes,
} from './mixer-report.ts';
export type { ReportValue, ReportBag, ReportEncodeOptions, ReportEncoderLimits, EncodedReport, MixerReportClient } from './mixer-report.ts';
