// A minimal DNS wire-format codec (RFC 1035, AAAA from RFC 3596) for the
// sidecar's DNS proxy: enough to read a query's header and questions, to
// answer A/AAAA from the mesh's name table, and to read answers in tests.
// No well-kept DNS library (dns-packet) is installed, so this stays small
// and strict: anything malformed throws DnsFormatError and the proxy answers
// FORMERR or drops it. Records other than A, AAAA and CNAME are kept as raw
// bytes.

import { isIPv4, isIPv6 } from 'node:net';

export const RecordType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const RCode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const CLASS_IN = 1;

export class DnsFormatError extends Error {}

export interface DnsQuestion {
  name: string; // lower-case, no trailing dot
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** A / AAAA: the address; CNAME: the target name; others: undefined (see `raw`). */
  data?: string;
  raw: Buffer;
}

export interface DnsMessage {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

const MAX_POINTERS = 32;

function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  let jumps = 0;
  let total = 0;
  for (;;) {
    if (pos >= buf.length) throw new DnsFormatError('name runs past the message');
    const len = buf[pos];
    if (len === 0) {
      pos += 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError('truncated compression pointer');
      if (++jumps > MAX_POINTERS) throw new DnsFormatError('compression loop');
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1];
      continue;
    }
    if (len & 0xc0) throw new DnsFormatError('unsupported label type');
    if (pos + 1 + len > buf.length) throw new DnsFormatError('label runs past the message');
    total += len + 1;
    if (total > 255) throw new DnsFormatError('name longer than 255 octets');
    labels.push(buf.toString('latin1', pos + 1, pos + 1 + len).toLowerCase());
    pos += 1 + len;
  }
  return { name: labels.join('.'), next: next < 0 ? pos : next };
}

function readRecord(buf: Buffer, offset: number): { record: DnsRecord; next: number } {
  const { name, next } = readName(buf, offset);
  if (next + 10 > buf.length) throw new DnsFormatError('truncated record header');
  const type = buf.readUInt16BE(next);
  const klass = buf.readUInt16BE(next + 2);
  const ttl = buf.readUInt32BE(next + 4);
  const rdlen = buf.readUInt16BE(next + 8);
  const start = next + 10;
  if (start + rdlen > buf.length) throw new DnsFormatError('truncated record data');
  const raw = buf.subarray(start, start + rdlen);
  let data: string | undefined;
  if (type === RecordType.A && rdlen === 4) data = `${raw[0]}.${raw[1]}.${raw[2]}.${raw[3]}`;
  else if (type === RecordType.AAAA && rdlen === 16) {
    const g: string[] = [];
    for (let i = 0; i < 16; i += 2) g.push(raw.readUInt16BE(i).toString(16));
    data = g.join(':');
  } else if (type === RecordType.CNAME) data = readName(buf, start).name;
  return { record: { name, type, class: klass, ttl, data, raw: Buffer.from(raw) }, next: start + rdlen };
}

/** Parses a DNS message. Throws DnsFormatError on malformed input. */
export function parseMessage(buf: Buffer): DnsMessage {
  if (buf.length < 12) throw new DnsFormatError('shorter than a DNS header');
  const flags = buf.readUInt16BE(2);
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)];
  const msg: DnsMessage = {
    id: buf.readUInt16BE(0),
    qr: Boolean(flags & 0x8000),
    opcode: (flags >> 11) & 0xf,
    aa: Boolean(flags & 0x0400),
    tc: Boolean(flags & 0x0200),
    rd: Boolean(flags & 0x0100),
    ra: Boolean(flags & 0x0080),
    rcode: flags & 0xf,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  let pos = 12;
  for (let i = 0; i < counts[0]; i++) {
    const { name, next } = readName(buf, pos);
    if (next + 4 > buf.length) throw new DnsFormatError('truncated question');
    msg.questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
    pos = next + 4;
  }
  for (const [count, list] of [[counts[1], msg.answers], [counts[2], msg.authorities], [counts[3], msg.additionals]] as const) {
    for (let i = 0; i < count; i++) {
      const r = readRecord(buf, pos);
      list.push(r.record);
      pos = r.next;
    }
  }
  return msg;
}

/** Encodes a name as uncompressed labels. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const parts: Buffer[] = [];
  let total = 1;
  if (trimmed.length) {
    for (const label of trimmed.split('.')) {
      const b = Buffer.from(label, 'latin1');
      if (b.length === 0 || b.length > 63) throw new DnsFormatError(`bad label in ${JSON.stringify(name)}`);
      total += b.length + 1;
      parts.push(Buffer.from([b.length]), b);
    }
  }
  if (total > 255) throw new DnsFormatError(`name ${JSON.stringify(name)} longer than 255 octets`);
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function encodeAddress(type: number, address: string): Buffer {
  if (type === RecordType.A) {
    if (!isIPv4(address)) throw new DnsFormatError(`${address} is not IPv4`);
    return Buffer.from(address.split('.').map(Number));
  }
  if (!isIPv6(address)) throw new DnsFormatError(`${address} is not IPv6`);
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const o = v4[1].split('.').map(Number);
    text = `${text.slice(0, -v4[1].length)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface Answer {
  name: string;
  type: typeof RecordType.A | typeof RecordType.AAAA;
  ttl: number;
  address: string;
}

export interface ResponseOptions {
  rcode?: number;
  answers?: readonly Answer[];
  authoritative?: boolean;
  recursionAvailable?: boolean;
}

/**
 * Builds the response to a parsed query: same id, opcode, RD and question,
 * QR set, the given answers (names compressed against the question when they
 * match it).
 */
export function buildResponse(query: DnsMessage, opts: ResponseOptions = {}): Buffer {
  const answers = opts.answers ?? [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.id, 0);
  let flags = 0x8000 | ((query.opcode & 0xf) << 11) | (opts.rcode ?? RCode.NOERROR);
  if (opts.authoritative) flags |= 0x0400;
  if (query.rd) flags |= 0x0100;
  if (opts.recursionAvailable ?? true) flags |= 0x0080;
  header.writeUInt16BE(flags, 2);
  const q = query.questions[0];
  header.writeUInt16BE(q ? 1 : 0, 4);
  header.writeUInt16BE(answers.length, 6);
  const parts: Buffer[] = [header];
  if (q) {
    const qt = Buffer.alloc(4);
    qt.writeUInt16BE(q.type, 0);
    qt.writeUInt16BE(q.class, 2);
    parts.push(encodeName(q.name), qt);
  }
  for (const a of answers) {
    const name = q && a.name.toLowerCase() === q.name ? Buffer.from([0xc0, 12]) : encodeName(a.name);
    const rdata = encodeAddress(a.type, a.address);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(a.type, 0);
    fixed.writeUInt16BE(CLASS_IN, 2);
    fixed.writeUInt32BE(a.ttl >>> 0, 4);
    fixed.writeUInt16BE(rdata.length, 8);
    parts.push(name, fixed, rdata);
  }
  return Buffer.concat(parts);
}

/** Builds a standard recursive query (for tests and health checks). */
export function buildQuery(name: string, type: number, id = 0): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const qt = Buffer.alloc(4);
  qt.writeUInt16BE(type, 0);
  qt.writeUInt16BE(CLASS_IN, 2);
  return Buffer.concat([header, encodeName(name), qt]);
}

/** A bare error response for a message that could only be partly read (id and opcode from the header). */
export function buildErrorFromHeader(buf: Buffer, rcode: number): Buffer | undefined {
  if (buf.length < 12 || buf[2] & 0x80) return undefined;
  const out = Buffer.alloc(12);
  out.writeUInt16BE(buf.readUInt16BE(0), 0);
  out.writeUInt16BE(0x8000 | (buf.readUInt16BE(2) & 0x7900) | 0x0080 | rcode, 2);
  return out;
}
