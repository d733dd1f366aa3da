// Loads Envoy's xDS v3 protos from the copy that ships inside
// @grpc/grpc-js-xds (deps/), once per process, so Galley, Pilot and the proxy
// all speak the exact messages Envoy defines instead of hand-written ones.
//
// Field names: keepCase is true everywhere, so messages in JS look like
// Envoy's JSON/YAML config (`version_info`, `type_url`, `resource_names`).
// That keeps golden files and Envoy docs readable side by side.
//
// Start-up cost: parsing ~40 .proto files and their imports takes about
// 0.2 s of CPU, and proto-loader's package definition (a descriptor for each
// of ~430 types) another 0.15 s, in every sidecar that `mesh up` starts at
// once. So the parsed set is cached on disk as protobufjs JSON (written by
// the first process that parses it, keyed by the versions of the packages
// that shape it; see protoCacheDir), and gRPC service definitions are built
// per service, on first use, straight from the root.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { env } from '../common/index.ts';
import type { GrpcObject, ServiceClientConstructor, ServiceDefinition } from '@grpc/grpc-js';
import type { Options, PackageDefinition } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
// proto-loader's main module registers Google's well-known types with
// protobufjs on load; its util module (which returns a protobufjs Root, needed
// for Any packing) does not, so the main module is loaded first.
const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
const protoUtil = require('@grpc/proto-loader/build/src/util.js') as typeof import('@grpc/proto-loader/build/src/util.js');
// The protobufjs instance proto-loader uses (the one with the well-known types registered).
const protobuf = createRequire(require.resolve('@grpc/proto-loader'))('protobufjs') as { Root: { fromJSON(json: unknown): ProtoRoot } };

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
  'envoy/extensions/filters/network/ext_authz/v3/ext_authz.proto',
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

/** Where parsed proto sets are cached: $MESH_CACHE_DIR, else node_modules/.cache/mesh beside the installed packages; undefined: no cache. */
export function protoCacheDir(): string | undefined {
  const dir = env('MESH_CACHE_DIR');
  if (dir === 'off') return undefined;
  return dir || join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), '..', '..', '.cache', 'mesh');
}

/** The cache file of a file set: a new name whenever the protos, the parser or the set change. */
function cacheFile(dir: string, files: readonly string[]): string {
  const version = (pkg: string): string => (require(`${pkg}/package.json`) as { version: string }).version;
  const key = createHash('sha256')
    .update(JSON.stringify({ xds: version('@grpc/grpc-js-xds'), loader: version('@grpc/proto-loader'), protobufjs: (createRequire(require.resolve('@grpc/proto-loader'))('protobufjs/package.json') as { version: string }).version, files: [...files].sort() }))
    .digest('hex')
    .slice(0, 16);
  return join(dir, `xds-protos-${key}.json`);
}

/** Parses the .proto files, or reads the parse of an earlier process; writes the cache when it can (a read-only install just parses every time). */
function loadRoot(files: readonly string[], options: Options): ProtoRoot {
  const dir = protoCacheDir();
  if (dir === undefined) return protoUtil.loadProtosWithOptionsSync([...files], options);
  const file = cacheFile(dir, files);
  try {
    const root = protobuf.Root.fromJSON(JSON.parse(readFileSync(file, 'utf8')));
    root.resolveAll();
    return root;
  } catch {
    // absent (first run) or unreadable: parse and (re)write it
  }
  const root = protoUtil.loadProtosWithOptionsSync([...files], options);
  try {
    mkdirSync(dirname(file), { recursive: true });
    // Written aside and renamed, so a process starting meanwhile never reads half a file.
    const partial = `${file}.${process.pid}.tmp`;
    writeFileSync(partial, JSON.stringify(root.toJSON()));
    renameSync(partial, file);
  } catch {
    // not writable here: no cache
  }
  return root;
}

/** proto-loader's (de)serializers, for one message type. */
function serializer(type: ProtoType): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`cannot serialize an array as ${type.fullName}`);
    const bytes = type.encode(type.fromObject(value)).finish();
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  };
}

function deserializer(type: ProtoType, options: Options): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), options);
}

/** A gRPC service definition as proto-loader builds it (paths, streaming, (de)serializers), for one service of `root`. */
function serviceDefinitionOf(root: ProtoRoot, fullName: string, options: Options): ServiceDefinition {
  let service;
  try {
    service = root.lookupService(fullName);
  } catch {
    throw new Error(`the loaded xDS protos have no service ${fullName}`);
  }
  const definition: Record<string, unknown> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const request = method.resolvedRequestType!;
    const response = method.resolvedResponseType!;
    definition[method.name] = {
      path: `/${fullName}/${method.name}`,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request, options),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response, options),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return definition as unknown as ServiceDefinition;
}

/** Loads (once per distinct file set) the given protos and everything they import. */
export function loadXdsProtos(files: readonly string[] = DEFAULT_XDS_PROTO_FILES): XdsProtos {
  const key = [...files].sort().join('\n');
  const cached = cache.get(key);
  if (cached) return cached;
  const options: Options = { ...XDS_CONVERSION_OPTIONS, includeDirs: xdsIncludeDirs() };
  const root = loadRoot(files, options);
  const services = new Map<string, ServiceClientConstructor>();
  let packageDefinition: PackageDefinition | undefined;
  let grpcObject: GrpcObject | undefined;
  const protos: XdsProtos = {
    files: [...files],
    root,
    // Every type's descriptor: built only when asked for (nothing in the mesh needs it on start-up).
    get packageDefinition() {
      return (packageDefinition ??= protoLoader.fromJSON(root.toJSON(), options));
    },
    get grpcObject() {
      return (grpcObject ??= grpc.loadPackageDefinition(this.packageDefinition));
    },
    lookupType(typeUrlOrName) {
      return root.lookupType(typeNameOf(typeUrlOrName));
    },
    service(fullName) {
      let ctor = services.get(fullName);
      if (!ctor) {
        ctor = grpc.makeClientConstructor(serviceDefinitionOf(root, fullName, options), fullName);
        services.set(fullName, ctor);
      }
      return ctor;
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
