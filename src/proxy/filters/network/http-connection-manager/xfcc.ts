// x-forwarded-client-cert, as Envoy's HCM writes it from the downstream
// mTLS peer (forward_client_cert_details, set_current_client_cert_details):
// `By=<our URI SAN>;Hash=<peer cert sha256>;Subject="...";URI=<peer URI SAN>`.
// Plaintext or certificate-less connections drop the header unless the mode
// is ALWAYS_FORWARD_ONLY.

import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { tlsConnectionInfo } from '../../../transport-sockets/tls/connection-info.ts';

type D = Record<string, any>;

export type ForwardClientCertMode = 'SANITIZE' | 'FORWARD_ONLY' | 'APPEND_FORWARD' | 'SANITIZE_SET' | 'ALWAYS_FORWARD_ONLY';

export interface XfccSettings {
  readonly mode: ForwardClientCertMode;
  readonly subject: boolean;
  readonly cert: boolean;
  readonly chain: boolean;
  readonly uri: boolean;
  readonly dns: boolean;
}

const XFCC = 'x-forwarded-client-cert';

export function decodeXfccSettings(c: D): XfccSettings {
  const d: D = c.set_current_client_cert_details ?? {};
  return {
    mode: (c.forward_client_cert_details as ForwardClientCertMode) || 'SANITIZE',
    subject: d.subject?.value === true,
    cert: d.cert === true,
    chain: d.chain === true,
    uri: d.uri === true,
    dns: d.dns === true,
  };
}

/** Rewrites the request's XFCC header for the connection it arrived on. */
export function applyXfcc(headers: IncomingHttpHeaders, socket: Socket | null | undefined, x: XfccSettings): void {
  if (x.mode === 'ALWAYS_FORWARD_ONLY') return;
  const info = tlsConnectionInfo(socket);
  if (!info || !info.peerCertificatePresented || x.mode === 'SANITIZE') {
    if (headers[XFCC] !== undefined) delete headers[XFCC];
    return;
  }
  if (x.mode === 'FORWARD_ONLY') return;
  const parts: string[] = [];
  for (const u of info.uriSanLocalCertificate) parts.push(`By=${u}`);
  parts.push(`Hash=${info.sha256PeerCertificateDigest}`);
  if (x.subject) parts.push(`Subject="${info.subjectPeerCertificate.replace(/"/g, '\\"')}"`);
  if (x.cert) parts.push(`Cert="${encodeURIComponent(info.pemPeerCertificate)}"`);
  if (x.chain) parts.push(`Chain="${encodeURIComponent(info.pemPeerCertificate)}"`);
  if (x.uri) for (const u of info.uriSanPeerCertificate) parts.push(`URI=${u}`);
  if (x.dns) for (const d of info.dnsSanPeerCertificate) parts.push(`DNS=${d}`);
  const value = parts.join(';');
  const existing = headers[XFCC];
  headers[XFCC] = x.mode === 'APPEND_FORWARD' && existing ? `${existing},${value}` : value;
}
