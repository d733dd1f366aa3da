// Protobuf wire bytes read by hand, for the hot decoders (Pilot's discovery
// requests, Mixer's reports): fields are read where they lie, without the
// message objects protobufjs would build for every field of every request.

import { WIRE_BYTES, WIRE_FIXED64, WIRE_VARINT } from './proto-writer.ts';

const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;

/** A cursor over one message's bytes; every read checks the bounds (a truncated message throws, as protobufjs does). */
export class ProtoReader {
  readonly buf: Buffer;
  pos = 0;
  readonly end: number;

  /** Reads `buf` from `start` to `end` (the whole buffer by default). */
  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  /** A varint that fits a JS number exactly (tags and lengths); larger ones only when skipped. */
  uint32(): number {
    let value = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = this.buf[this.pos++]!;
      if (i < 5) value += (b & 0x7f) * shift;
      shift *= 128;
      if (b < 0x80) return value;
    }
    throw new RangeError('varint longer than 10 bytes');
  }

  /** The payload of a length-delimited field: [start, end). */
  span(): number {
    const len = this.uint32();
    if (len > this.end - this.pos) throw new RangeError('length-delimited field past the end of the message');
    const start = this.pos;
    this.pos += len;
    return start;
  }

  string(): string {
    const start = this.span();
    return this.buf.toString('utf8', start, this.pos);
  }

  skip(wire: number, field: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.uint32();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_BYTES:
        this.span();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      case WIRE_START_GROUP:
        for (;;) {
          const tag = this.uint32();
          if ((tag & 7) === WIRE_END_GROUP) {
            if (tag >>> 3 !== field) throw new Error('mismatched end group');
            return;
          }
          this.skip(tag & 7, tag >>> 3);
        }
      default:
        throw new Error(`invalid wire type ${wire}`);
    }
  }

  /** zigzag-decoded sint32. */
  sint32(): number {
    const n = this.uint32();
    return (n >>> 1) ^ -(n & 1);
  }

  /** int64/int32 as a number: negative values (ten-byte varints) too; beyond 2^53 approximate, as Long.toNumber is. */
  int64(): number {
    const start = this.pos;
    let value = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * shift;
      shift *= 128;
      if (b < 0x80) return i < 9 ? value : this.#signed64(start);
    }
    throw new RangeError('varint longer than 10 bytes');
  }

  /** A ten-byte varint from `start` read exactly, as a two's complement int64. */
  #signed64(start: number): number {
    let v = 0n;
    for (let i = 0; i < 10; i++) v |= BigInt(this.buf[start + i]! & 0x7f) << BigInt(7 * i);
    return Number(BigInt.asIntN(64, v));
  }

  double(): number {
    this.advance(8);
    return this.buf.readDoubleLE(this.pos - 8);
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new RangeError('fixed-size field past the end of the message');
    this.pos += n;
  }
}

