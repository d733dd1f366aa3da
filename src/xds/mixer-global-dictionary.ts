// Istio's global attribute dictionary (istio/api mixer/v1/global_dictionary.yaml),
// a wire contract of the Report API: a non-negative index in
// CompressedAttributes names the word at that position here, so the list is
// append-only and its order must match Istio's exactly. Reproduced as data,
// word for word, in the YAML's order. Istio's generators copied the three
// quoted YAML entries ('200', '0', '1') with their quotes, and those are the
// words its clients and Mixer used; the unquoted 0, 1, 200 appear later as
// plain words.

export const GLOBAL_WORDS: readonly string[] = Object.freeze([
  // Section 1: the standard attribute vocabulary
  'source.ip', 'source.port', 'source.name', 'source.uid', 'source.namespace', 'source.labels', 'source.user', 'source.principal',
  // target.* were renamed destination.*, but an append-only list keeps them
  'target.ip', 'target.port', 'target.service', 'target.name', 'target.uid', 'target.namespace', 'target.labels', 'target.user',
  'request.headers', 'request.id', 'request.path', 'request.host', 'request.method', 'request.reason', 'request.referer', 'request.scheme',
  'request.size', 'request.time', 'request.useragent', 'response.headers', 'response.size', 'response.time', 'response.duration', 'response.code',
  // Section 2: common HTTP headers (RFC 7541 appendix A)
  ':authority', ':method', ':path', ':scheme', ':status',
  'access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age',
  'access-control-request-method', 'access-control-request-headers', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges',
  'accept', 'access-control-allow', 'age', 'allow', 'authorization', 'cache-control', 'content-disposition', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-range', 'content-type', 'cookie', 'date', 'etag', 'expect', 'expires',
  'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'keep-alive', 'last-modified', 'link',
  'location', 'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after', 'server',
  'set-cookie', 'strict-transport-sec', 'transfer-encoding', 'user-agent', 'vary', 'via', 'www-authenticate',
  // HTTP methods
  'GET', 'POST',
  // common strings
  'http', 'envoy', "'200'", 'Keep-Alive', 'chunked', 'x-envoy-service-time', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto',
  'x-http-method-override', 'x-request-id', 'x-requested-with',
  // popular content types
  'application/json', 'application/xml', 'gzip', 'text/html', 'text/html; charset=utf-8', 'text/plain', 'text/plain; charset=utf-8',
  // common strings
  "'0'", "'1'", 'true', 'false', 'gzip, deflate', 'max-age=0', 'x-envoy-upstream-service-time', 'x-envoy-internal',
  'x-envoy-expected-rq-timeout-ms', 'x-ot-span-context', 'x-b3-traceid', 'x-b3-sampled', 'x-b3-spanid', 'tcp',
  // connection attributes
  'connection.id', 'connection.received.bytes', 'connection.received.bytes_total', 'connection.sent.bytes', 'connection.sent.bytes_total',
  'connection.duration',
  // context attributes
  'context.protocol', 'context.timestamp', 'context.time',
  // common integers
  '0', '1', '200', '302', '400', '401', '403', '404', '409', '429', '499', '500', '501', '502', '503', '504',
  'destination.ip', 'destination.port', 'destination.service', 'destination.name', 'destination.uid', 'destination.namespace',
  'destination.labels', 'destination.user',
  'source.service',
  // api attributes
  'api.service', 'api.version', 'api.operation', 'api.protocol',
  // auth attributes
  'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'request.auth.claims',
  // api key
  'request.api_key',
  'check.error_code', 'check.error_message',
  'request.total_size', 'response.total_size',
  // TCP connection event
  'connection.event',
  // whether Mixer check and quota calls hit the client's cache
  'check.cache_hit', 'quota.cache_hit',
]);

/** word -> its global index. */
export const GLOBAL_WORD_INDEX: ReadonlyMap<string, number> = new Map(GLOBAL_WORDS.map((w, i) => [w, i]));
