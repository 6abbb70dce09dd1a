/**
 * XDR (RFC 4506) encoder and decoder, as used by libvirt's RPC protocol.
 *
 * Every variable-length item carries a maximum: the writer refuses to produce, and the reader
 * refuses to accept, anything above the limit the protocol file declares (REMOTE_STRING_MAX,
 * list maxima, ...). A reader never reads past its buffer: a short or malformed payload raises
 * an XdrError instead of returning garbage.
 */

/** Limits from libvirt's virnetprotocol.x and remote_protocol.x. */
export const VIR_NET_MESSAGE_MAX = 33_554_432; // 32 MiB, whole packet excluding the length word
export const VIR_NET_MESSAGE_HEADER_MAX = 24;
export const VIR_NET_MESSAGE_PAYLOAD_MAX = VIR_NET_MESSAGE_MAX - VIR_NET_MESSAGE_HEADER_MAX;
export const VIR_NET_MESSAGE_LEN_MAX = 4;
export const VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX = 262_144;
export const VIR_NET_MESSAGE_STRING_MAX = 4_194_304;
export const REMOTE_STRING_MAX = 4_194_304;
export const REMOTE_DOMAIN_LIST_MAX = 16_384;
export const REMOTE_STORAGE_POOL_LIST_MAX = 16_384;
export const REMOTE_NETWORK_LIST_MAX = 16_384;
export const REMOTE_NWFILTER_LIST_MAX = 16_384;
export const REMOTE_STORAGE_VOL_LIST_MAX = 16_384;
export const REMOTE_SECRET_LIST_MAX = 16_384;
export const REMOTE_AUTH_TYPE_LIST_MAX = 20;
export const REMOTE_SECRET_VALUE_MAX = 65_536;
export const VIR_UUID_BUFLEN = 16;

export class XdrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XdrError';
  }
}

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

function pad(n: number): number {
  return (4 - (n % 4)) % 4;
}

export class XdrWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(
    initialSize = 256,
    private readonly maxSize = VIR_NET_MESSAGE_PAYLOAD_MAX,
  ) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  get length(): number {
    return this.pos;
  }

  private reserve(n: number): void {
    const need = this.pos + n;
    if (need > this.maxSize) throw new XdrError(`XDR payload would exceed ${this.maxSize} bytes`);
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(Math.min(size, Math.max(need, this.maxSize)));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int(v: number): this {
    if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw new XdrError(`int out of range: ${v}`);
    this.reserve(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  uint(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX) throw new XdrError(`unsigned int out of range: ${v}`);
    this.reserve(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  hyper(v: bigint | number): this {
    const b = BigInt(v);
    if (b < INT64_MIN || b > INT64_MAX) throw new XdrError(`hyper out of range: ${v}`);
    this.reserve(8);
    this.buf.writeBigInt64BE(b, this.pos);
    this.pos += 8;
    return this;
  }

  uhyper(v: bigint | number): this {
    const b = BigInt(v);
    if (b < 0n || b > UINT64_MAX) throw new XdrError(`unsigned hyper out of range: ${v}`);
    this.reserve(8);
    this.buf.writeBigUInt64BE(b, this.pos);
    this.pos += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.int(v ? 1 : 0);
  }

  /** Fixed-length opaque data: exactly `len` bytes plus padding. */
  opaqueFixed(data: Uint8Array, len: number): this {
    if (data.length !== len) throw new XdrError(`fixed opaque must be ${len} bytes, got ${data.length}`);
    this.reserve(len + pad(len));
    this.buf.set(data, this.pos);
    this.pos += len;
    const p = pad(len);
    this.buf.fill(0, this.pos, this.pos + p);
    this.pos += p;
    return this;
  }

  /** Variable-length opaque data with a maximum length. */
  opaque(data: Uint8Array, max: number): this {
    if (data.length > max) throw new XdrError(`opaque of ${data.length} bytes exceeds maximum ${max}`);
    this.uint(data.length);
    return this.opaqueFixed(data, data.length);
  }

  string(s: string, max = REMOTE_STRING_MAX): this {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.length > max) throw new XdrError(`string of ${bytes.length} bytes exceeds maximum ${max}`);
    return this.opaque(bytes, max);
  }

  /** Optional data ("pointer" in rpcgen): a bool, then the value when present. */
  optional<T>(v: T | null | undefined, enc: (w: this, v: T) => void): this {
    if (v === null || v === undefined) return this.bool(false);
    this.bool(true);
    enc(this, v);
    return this;
  }

  /** Variable-length array with a maximum element count. */
  array<T>(items: readonly T[], max: number, enc: (w: this, v: T) => void): this {
    if (items.length > max) throw new XdrError(`array of ${items.length} elements exceeds maximum ${max}`);
    this.uint(items.length);
    for (const it of items) enc(this, it);
    return this;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class XdrReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new XdrError(`XDR underflow: need ${n} bytes at offset ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }

  int(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  hyper(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** An unsigned hyper as a JS number; fails rather than silently losing precision. */
  uhyperNumber(): number {
    const v = this.uhyper();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new XdrError(`unsigned hyper too large for a number: ${v}`);
    return Number(v);
  }

  bool(): boolean {
    const v = this.int();
    if (v !== 0 && v !== 1) throw new XdrError(`invalid XDR bool: ${v}`);
    return v === 1;
  }

  opaqueFixed(len: number): Buffer {
    this.need(len + pad(len));
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + len));
    this.pos += len + pad(len);
    return out;
  }

  opaque(max: number): Buffer {
    const len = this.uint();
    if (len > max) throw new XdrError(`opaque of ${len} bytes exceeds maximum ${max}`);
    return this.opaqueFixed(len);
  }

  string(max = REMOTE_STRING_MAX): string {
    const len = this.uint();
    if (len > max) throw new XdrError(`string of ${len} bytes exceeds maximum ${max}`);
    this.need(len + pad(len));
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len + pad(len);
    return s;
  }

  optional<T>(dec: (r: this) => T): T | null {
    return this.bool() ? dec(this) : null;
  }

  array<T>(max: number, dec: (r: this) => T): T[] {
    const n = this.uint();
    if (n > max) throw new XdrError(`array of ${n} elements exceeds maximum ${max}`);
    // Each element takes at least 4 bytes: refuse counts the buffer cannot possibly hold.
    if (n * 4 > this.remaining) throw new XdrError(`array count ${n} larger than remaining payload`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(dec(this));
    return out;
  }

  /** Asserts the whole payload was consumed (trailing bytes mean a schema mismatch). */
  end(): void {
    if (this.pos !== this.buf.length) throw new XdrError(`${this.buf.length - this.pos} trailing bytes in XDR payload`);
  }
}
