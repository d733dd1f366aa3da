// Loads Envoy's xDS v3 protos from the copy that ships inside
// @grpc/grpc-js-xds (deps/), once per process, so Galley, Pilot and the proxy
// all speak the exact messages Envoy defines instead of hand-written ones.
//
// Field names: keepCase is true everywhere, so messages in JS look like
// Envoy's JSON/YAML config (`version_info`, `type_url`, `resource_names`).
// That keeps golden files and Envoy docs readable side by side.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { GrpcObject, ServiceClientConstructor, ServiceDefinition } from '@grpc/grpc-js';
import type { Options, PackageDefinition } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
// proto-loader's main module registers Google's well-known types with
// protobufjs on load; its util module (which returns a protobufjs Root, needed
// for Any packing) does not, so the main module is loaded first.
const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
const protoUtil = require('@grpc/proto-loader/build/src/util.js') as typeof import('@grpc/proto-loader/build/src/util.js');

/** The protobufjs Root type, named without depending on protobufjs directly. */
export type ProtoRoot = ReturnType<typeof protoUtil.loadProtosWithOptionsSync>;
export type ProtoType = ReturnType<ProtoRoot['lookupType']>;

/** The include roots inside @grpc/grpc-js-xds/deps, in the order protoc would take them. */
export function xdsIncludeDirs(): string[] {
  const deps = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
}

/** Only the discovery service: what Galley's distribution needs. */
export const ADS_PROTO_FILES: readonly string[] = ['envoy/service/discovery/v3/ads.proto'];

/** ADS plus the resources and extensions Pilot, the agent and Mixer use. */
export const DEFAULT_XDS_PROTO_FILES: readonly string[] = [
  ...ADS_PROTO_FILES,
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/ratelimit/v3/rate_limit.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/config/trace/v3/zipkin.proto',
  'udpa/type/v1/typed_struct.proto',
  'xds/type/v3/typed_struct.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/service/ratelimit/v3/rls.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/admin/v3/config_dump.proto',
];

/**
 * How decoded messages look: snake_case names, 64-bit integers and enums as
 * strings, absent scalars and lists filled with defaults, and the name of the
 * set oneof member available under the oneof's name.
 */
export const XDS_CONVERSION_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

/** One loaded proto set. Contract: shared and never mutated; do not add files to `root`. */
export interface XdsProtos {
  readonly files: readonly string[];
  readonly root: ProtoRoot;
  readonly packageDefinition: PackageDefinition;
  readonly grpcObject: GrpcObject;
  /** The message type for `type.googleapis.com/envoy...` or a bare full name; throws when unknown. */
  lookupType(typeUrlOrName: string): ProtoType;
  /** A gRPC service by full name, e.g. `envoy.service.discovery.v3.AggregatedDiscoveryService`. */
  service(fullName: string): ServiceClientConstructor;
  serviceDefinition(fullName: string): ServiceDefinition;
}

const cache = new Map<string, XdsProtos>();

/** Loads (once per distinct file set) the given protos and everything they import. */
export function loadXdsProtos(files: readonly string[] = DEFAULT_XDS_PROTO_FILES): XdsProtos {
  const key = [...files].sort().join('\n');
  const cached = cache.get(key);
  if (cached) return cached;
  const options: Options = { ...XDS_CONVERSION_OPTIONS, includeDirs: xdsIncludeDirs() };
  const root = protoUtil.loadProtosWithOptionsSync([...files], options);
  // Built from the already parsed root rather than parsing the files twice.
  const packageDefinition = protoLoader.fromJSON(root.toJSON(), options);
  const grpcObject = grpc.loadPackageDefinition(packageDefinition);
  const protos: XdsProtos = {
    files: [...files],
    root,
    packageDefinition,
    grpcObject,
    lookupType(typeUrlOrName) {
      return root.lookupType(typeNameOf(typeUrlOrName));
    },
    service(fullName) {
      let node: unknown = grpcObject;
      for (const part of fullName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
      if (typeof node !== 'function') throw new Error(`the loaded xDS protos have no service ${fullName}`);
      return node as ServiceClientConstructor;
    },
    serviceDefinition(fullName) {
      return this.service(fullName).service;
    },
  };
  cache.set(key, protos);
  return protos;
}

/** `type.googleapis.com/envoy.config.cluster.v3.Cluster` -> `envoy.config.cluster.v3.Cluster`. */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}
