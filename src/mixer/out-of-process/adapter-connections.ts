// One gRPC channel per adapter address (and message-size limits), shared by
// every handler that points there and closed when the last of them closes.
// Handlers reused across config snapshots keep their reference, so a config
// edit does not reconnect.

import * as grpc from '@grpc/grpc-js';

/** Per-channel limits: gRPC refuses to send or accept a message larger than these. */
export interface AdapterMessageLimits {
  readonly maxSendMessageBytes: number;
  readonly maxReceiveMessageBytes: number;
}

/** A reference to a shared channel. Contract: release() once; the channel closes with its last reference. */
export interface AdapterConnection {
  readonly address: string;
  readonly client: grpc.Client;
  release(): void;
}

interface Shared {
  readonly client: grpc.Client;
  refs: number;
}

export class AdapterConnections {
  readonly #shared = new Map<string, Shared>();

  acquire(address: string, limits: AdapterMessageLimits): AdapterConnection {
    const key = `${address}\u0000${limits.maxSendMessageBytes}\u0000${limits.maxReceiveMessageBytes}`;
    let shared = this.#shared.get(key);
    if (!shared) {
      const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
        'grpc.max_send_message_length': limits.maxSendMessageBytes,
        'grpc.max_receive_message_length': limits.maxReceiveMessageBytes,
      });
      shared = { client, refs: 0 };
      this.#shared.set(key, shared);
    }
    shared.refs++;
    let released = false;
    const entry = shared;
    return {
      address,
      client: entry.client,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.refs === 0) {
          this.#shared.delete(key);
          entry.client.close();
        }
      },
    };
  }

  /** Open channels (for tests and diagnostics). */
  get size(): number {
    return this.#shared.size;
  }
}

/** The process's pool, used when Mixer is not given one. */
export const sharedAdapterConnections = new AdapterConnections();
