// A real xDS client: @grpc/grpc-js-xds dials `xds:///echo...:7000` through
// Pilot's ADS server (LDS -> RDS -> CDS -> EDS) and calls a grpc-js echo
// backend. Its own file: the xDS client reads its bootstrap once per process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../src/xds/index.ts';
import type { XdsResource } from '../../src/pilot/model/index.ts';
import { startPilot, waitFor } from './xds-server-helpers.ts';
import type { TestPush } from './xds-server-helpers.ts';

const HOST = 'echo.default.svc.cluster.local';
const TARGET = `${HOST}:7000`;
const CLUSTER = `outbound|7000||${HOST}`;

const passThrough = (b: Buffer) => b;
const ECHO: grpc.ServiceDefinition = {
  Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: passThrough, requestDeserialize: passThrough, responseSerialize: passThrough, responseDeserialize: passThrough },
};

/** What Istio gives a proxyless gRPC client: an API listener named after the target, its route, an EDS cluster and its endpoints. */
function proxylessPush(backendPort: number): TestPush {
  const apiListener: XdsResource = {
    name: TARGET,
    value: {
      name: TARGET,
      api_listener: {
        api_listener: {
          '@type': TypeUrl.HttpConnectionManager,
          stat_prefix: TARGET,
          rds: { route_config_name: TARGET, config_source: { ads: {}, resource_api_version: 2 } },
          http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TypeUrl.Router } }],
        },
      },
    },
  };
  const routes: XdsResource = {
    name: TARGET,
    value: { name: TARGET, virtual_hosts: [{ name: TARGET, domains: [HOST, TARGET], routes: [{ match: { prefix: '' }, route: { cluster: CLUSTER } }] }] },
  };
  const cluster: XdsResource = {
    name: CLUSTER,
    value: { name: CLUSTER, type: 3 /* EDS */, eds_cluster_config: { service_name: CLUSTER, eds_config: { ads: {}, resource_api_version: 2 } }, lb_policy: 0 /* ROUND_ROBIN */ },
  };
  const endpoints: XdsResource = {
    name: CLUSTER,
    value: {
      cluster_name: CLUSTER,
      endpoints: [
        {
          locality: { region: 'local', zone: 'a' },
          load_balancing_weight: { value: 1 },
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } }, load_balancing_weight: { value: 1 } }],
        },
      ],
    },
  };
  return {
    version: 'v1',
    resources: { [TypeUrl.Listener]: [apiListener], [TypeUrl.RouteConfiguration]: [routes], [TypeUrl.Cluster]: [cluster], [TypeUrl.ClusterLoadAssignment]: [endpoints] },
  };
}

async function startEcho(): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.concat([Buffer.from('echo:'), call.request])),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { port, server };
}

test('a grpc-js xDS client resolves a service through Pilot and calls it', async (t) => {
  const echo = await startEcho();
  const pilot = await startPilot({ initialPush: proxylessPush(echo.port) });
  const nodeId = 'sidecar~127.0.0.1~client.default~default.svc.cluster.local';
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${pilot.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    // grpc-js-xds refuses a bootstrap node without a locality, even an empty one.
    node: { id: nodeId, locality: {}, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } },
  });
  // Imported only now: the module reads the bootstrap when its first channel starts.
  const xds = await import('@grpc/grpc-js-xds');
  xds.register();
  const Client = grpc.makeGenericClientConstructor(ECHO, 'Echo');
  const client = new Client(`xds:///${TARGET}`, grpc.credentials.createInsecure());
  t.after(() => {
    client.close();
    pilot.stop();
    echo.server.forceShutdown();
  });
  const reply = await new Promise<Buffer>((resolve, reject) =>
    (client as unknown as { Echo: (req: Buffer, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Buffer) => void) => void }).Echo(
      Buffer.from('hello'),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
  assert.equal(reply.toString(), 'echo:hello');

  // Pilot saw a proxyless client that accepted every type.
  await waitFor(() => Object.values(pilot.xds.proxyStatus()[0]?.types ?? {}).filter((s) => s.state === 'SYNCED').length === 4);
  const info = pilot.xds.connectionsInfo()[0];
  assert.equal(info.proxy?.generator, 'grpc');
  assert.equal(info.proxy?.id, nodeId);
  const status = pilot.xds.proxyStatus()[0];
  for (const type of [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]) assert.equal(status.types[type].ackedVersion, 'v1', type);
  assert.equal(pilot.xds.stats().nacks, 0);
});
