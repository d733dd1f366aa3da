// Reads the sample's Params message (config.proto) from the bytes of
// `adapter_config`. Protobuf's wire format is simple enough to read by hand
// for three fields: each field is a key (field number << 3 | wire type)
// followed by a varint (type 0) or a length and that many bytes (type 2).
// An adapter in another language uses its generated Params class instead.

export interface Params {
  readonly filePath: string;
  readonly allow: readonly string[];
  readonly validSeconds: number;
}

const PARAMS_TYPE_URL = 'type.googleapis.com/sampleadapter.Params';

function readVarint(buf: Uint8Array, at: { pos: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (at.pos >= buf.length) throw new Error('truncated varint');
    const b = buf[at.pos++]!;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
  }
}

/** Decodes `adapter_config` ({type_url, value}); throws on another type or malformed bytes. */
export function decodeParams(anyConfig: { type_url?: string; value?: Uint8Array } | null | undefined): Params {
  if (!anyConfig || anyConfig.type_url !== PARAMS_TYPE_URL) throw new Error(`adapter_config must be ${PARAMS_TYPE_URL}, got ${anyConfig?.type_url ?? 'nothing'}`);
  const buf = anyConfig.value ?? new Uint8Array();
  const at = { pos: 0 };
  let filePath = '';
  const allow: string[] = [];
  let validSeconds = 5;
  while (at.pos < buf.length) {
    const key = readVarint(buf, at);
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (wireType === 0) {
      const v = readVarint(buf, at);
      if (field === 3) validSeconds = v;
    } else if (wireType === 2) {
      const len = readVarint(buf, at);
      const text = Buffer.from(buf.subarray(at.pos, at.pos + len)).toString('utf8');
      at.pos += len;
      if (field === 1) filePath = text;
      else if (field === 2) allow.push(text);
    } else throw new Error(`unexpected wire type ${wireType} in Params`);
  }
  return { filePath, allow, validSeconds };
}
