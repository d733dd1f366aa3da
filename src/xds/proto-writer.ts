// Protobuf wire bytes written by hand into one buffer, for the hot encoders
// (Pilot's discovery responses, the sidecar's Mixer reports). protobufjs's
// Writer allocates an op object per field and a fresh buffer per message;
// these encoders write thousands of small fields per second, so they write
// straight into a buffer they size themselves (or let grow) instead.

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;

/** Bytes of `n` as a varint (n a non-negative safe integer). */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size += 1;
  }
  return size;
}

/** sint32's zigzag: small negative and positive numbers both as small varints. */
export function zigzag32(n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0;
}

/** Size of a length-delimited field with a payload of `len` bytes (tag < 16: one byte). */
export function fieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  /** Room for `n` more bytes; a writer over a fixed, pre-sized buffer never needs it. */
  reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  /** int64 of a safe integer: negative numbers take ten bytes (two's complement), as protobuf writes them. */
  int64(n: number): void {
    if (n >= 0) return this.varint(n);
    let rest = BigInt.asUintN(64, BigInt(n));
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buf[this.pos++] = Number(rest);
  }

  double(n: number): void {
    this.buf.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  string(field: number, value: string | undefined): void {
    if (!value) return; // proto3: empty strings are not written
    this.tag(field, WIRE_BYTES);
    this.varint(Buffer.byteLength(value));
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  bytes(field: number, value: Uint8Array): void {
    this.tag(field, WIRE_BYTES);
    this.varint(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  header(field: number, len: number): void {
    this.tag(field, WIRE_BYTES);
    this.varint(len);
  }

  /** What was written, as a view of the buffer. */
  bytesWritten(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
