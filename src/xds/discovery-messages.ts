// The shapes of Envoy's discovery messages (envoy.service.discovery.v3) as
// proto-loader hands them over with XDS_CONVERSION_OPTIONS: snake_case names,
// defaults filled in on decode. Only the fields the mesh reads or writes.

export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

export interface StatusMessage {
  code?: number;
  message?: string;
}

export interface NodeMessage {
  id?: string;
  cluster?: string;
  metadata?: unknown;
  [field: string]: unknown;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: NodeMessage | null;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  /** Set when the client rejects (NACKs) the response named by response_nonce. */
  error_detail?: StatusMessage | null;
}

export interface DiscoveryResponse {
  version_info: string;
  resources: AnyMessage[];
  type_url: string;
  nonce: string;
  control_plane?: { identifier: string };
}

export interface DeltaDiscoveryRequest {
  node?: NodeMessage | null;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: StatusMessage | null;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource?: AnyMessage;
  aliases?: string[];
}

export interface DeltaDiscoveryResponse {
  system_version_info: string;
  resources: DeltaResource[];
  type_url: string;
  removed_resources: string[];
  nonce: string;
  control_plane?: { identifier: string };
}
