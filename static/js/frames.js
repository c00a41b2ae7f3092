// Decoder of the binary frame format (docs/protocol.md; the encoder is model_server/frames.py).
export const VERSION = 1;
const decoder = new TextDecoder();

export function decodeFrame(buffer) {
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== VERSION) throw new Error(`frame format version has to be ${VERSION}, but got ${version}`);
  const n = view.getUint32(1, true);
  const header = JSON.parse(decoder.decode(bytes.subarray(5, 5 + n)));
  const base = 5 + n;
  const arrays = {};
  for (const s of header.sections) {
    const raw = bytes.subarray(base + s.offset, base + s.offset + s.nbytes);
    const size = s.shape.reduce((a, b) => a * b, 1);
    let out;
    if (s.enc === 'bits') {
      out = new Uint8Array(size);
      for (let i = 0; i < size; i++) out[i] = (raw[i >> 3] >> (7 - (i & 7))) & 1;
    } else if (s.enc === 'u32') {
      out = new Uint32Array(raw.slice().buffer);
    } else if (s.enc === 'q8') {
      const q = new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength);
      out = Float32Array.from(q, v => v * s.scale);
    } else {
      out = Float32Array.from(raw, v => v / 255);
    }
    arrays[s.name] = { data: out, shape: s.shape };
  }
  return { header, arrays, bytes: bytes.byteLength };
}
