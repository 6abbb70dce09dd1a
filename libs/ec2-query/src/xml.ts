import { Ec2Error, isEc2Error } from './errors.js';
import { DEFAULT_EC2_VERSION } from './params.js';

/** Content type of every EC2 response (success and error). */
export const EC2_XML_CONTENT_TYPE = 'text/xml;charset=UTF-8';

/** Values the serializer understands. */
export type XmlValue = string | number | bigint | boolean | Date | Buffer | null | undefined | readonly XmlValue[] | XmlNamespaced | { readonly [key: string]: XmlValue };

/**
 * An element in another XML namespace (`<name xmlns="ns">…</name>`; its children inherit it), e.g.
 * Eucalyptus' `http://msgs.eucalyptus.com/<version>` elements beside AWS's in one answer.
 */
export class XmlNamespaced {
  constructor(
    readonly ns: string,
    readonly value: XmlValue,
  ) {}
}

/** Escape text for element content. Characters illegal in XML 1.0 become U+FFFD. */
export function escapeXml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
    .replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

/** RFC 3339 UTC with milliseconds and `Z` (`2026-11-26T03:24:00.000Z`). */
export function formatTimestamp(d: Date): string {
  return d.toISOString();
}

function scalar(v: string | number | bigint | boolean | Date | Buffer): string {
  if (typeof v === 'string') return escapeXml(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('non-finite number in EC2 output');
    return String(v);
  }
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return formatTimestamp(v);
  return v.toString('base64'); // Buffer
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function element(name: string, v: XmlValue, out: string[]): void {
  if (v === undefined || v === null) return;
  if (!NAME_RE.test(name)) throw new Error(`invalid XML element name ${JSON.stringify(name)}`);
  if (v instanceof XmlNamespaced) {
    const inner: string[] = [];
    element(name, v.value, inner);
    if (inner.length === 0) return;
    // the first chunk always opens this element (`<name>`, `<name/>` or `<name>text</name>`)
    inner[0] = `<${name} xmlns="${escapeXml(v.ns)}"` + inner[0]!.slice(name.length + 1);
    out.push(...inner);
    return;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) {
      out.push(`<${name}/>`);
      return;
    }
    out.push(`<${name}>`);
    for (const item of v as readonly XmlValue[]) {
      if (item === undefined || item === null) continue;
      element('item', item, out);
    }
    out.push(`</${name}>`);
    return;
  }
  if (typeof v === 'object' && !(v instanceof Date) && !Buffer.isBuffer(v)) {
    out.push(`<${name}>`);
    body(v as { readonly [key: string]: XmlValue }, out);
    out.push(`</${name}>`);
    return;
  }
  out.push(`<${name}>${scalar(v as string | number | bigint | boolean | Date | Buffer)}</${name}>`);
}

function body(obj: { readonly [key: string]: XmlValue }, out: string[]): void {
  for (const [k, v] of Object.entries(obj)) element(k, v, out);
}

/** Serialize an output object's members (no root) — exported for tests and special cases. */
export function renderXmlBody(output: { readonly [key: string]: XmlValue }): string {
  const out: string[] = [];
  body(output, out);
  return out.join('');
}

/**
 * Render a successful EC2 response:
 * `<?xml ...?><{Action}Response xmlns="http://ec2.amazonaws.com/doc/{Version}/"><requestId>…</requestId>…`.
 *
 * `output` keys become elements verbatim (pass lower-camel names such as `keySet`, `keyName`);
 * arrays become `<item>` children (empty array → empty element), objects nest, booleans are
 * `true`/`false`, `Date` is RFC 3339 with ms and `Z`, `Buffer` is base64, `undefined`/`null`
 * are omitted, text is escaped. Send with status 200, `EC2_XML_CONTENT_TYPE` and the
 * `x-amzn-requestid` header.
 */
export function renderResponse(action: string, version: string | undefined, requestId: string, output: { readonly [key: string]: XmlValue } = {}): string {
  if (!/^[A-Za-z0-9]+$/.test(action)) throw new Error(`invalid action name ${JSON.stringify(action)}`);
  const v = escapeXml(version || DEFAULT_EC2_VERSION);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<${action}Response xmlns="http://ec2.amazonaws.com/doc/${v}/">` +
    `<requestId>${escapeXml(requestId)}</requestId>` +
    renderXmlBody(output) +
    `</${action}Response>`
  );
}

/** A rendered error: HTTP status, AWS code and XML body. */
export interface RenderedError {
  status: number;
  code: string;
  body: string;
}

/** Map anything thrown to an `Ec2Error`; unknown exceptions become a generic `InternalError`. */
export function toEc2Error(err: unknown): Ec2Error {
  return isEc2Error(err) ? err : Ec2Error.internal();
}

/**
 * Render an error document:
 * `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
 * Non-`Ec2Error` values become `InternalError` 500 with a generic message (log them yourself).
 */
export function renderError(err: unknown, requestId: string): RenderedError {
  const e = toEc2Error(err);
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<Response><Errors><Error><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message></Error></Errors>` +
    `<RequestID>${escapeXml(requestId)}</RequestID></Response>`;
  return { status: e.httpStatus, code: e.code, body };
}
