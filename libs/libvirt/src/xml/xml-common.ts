// Shared helpers for the libvirt XML builders and parsers: one xml2js Builder configuration,
// a synchronous tolerant parser, node accessors, and input validation.
//
// Escaping: every user-supplied value is put into the object tree as a *value* (text or
// attribute), never as a key, and xml2js' Builder (xmlbuilder) escapes `<`, `&`, `>` in text and
// `<`, `&`, `"`, TAB, LF, CR in attributes (attributes are double-quoted, so `'` needs no escape).
// Characters XML 1.0 cannot carry at all (NUL, most C0 controls, lone surrogates) are refused
// here with a clear Error instead of failing deep inside the builder.
import xml2js from 'xml2js';

/** A node of the object tree handed to xml2js' Builder. */
export type XmlNode = { [key: string]: unknown };

const builder = new xml2js.Builder({
  headless: true,
  renderOpts: { pretty: true, indent: '  ', newline: '\n' },
});

/** Serialises `{ root: {...} }` to an XML string without an `<?xml?>` header (libvirt needs none). */
export function renderXml(root: string, node: XmlNode): string {
  return builder.buildObject({ [root]: node });
}

/**
 * Parses XML synchronously (xml2js calls back synchronously when `async` is false) and returns
 * the root element. Tolerant: unknown elements are ignored by the callers; only malformed XML or a
 * wrong root element throws.
 */
export function parseXmlRoot(xml: string, expectedRoot: string): XmlNode {
  if (typeof xml !== 'string' || xml.trim() === '') {
    throw new Error(`cannot parse ${expectedRoot} XML: empty input`);
  }
  let result: unknown;
  let error: unknown;
  let done = false;
  const parser = new xml2js.Parser({ explicitArray: true, async: false });
  parser.parseString(xml, (err: unknown, res: unknown) => {
    error = err;
    result = res;
    done = true;
  });
  if (!done) throw new Error(`cannot parse ${expectedRoot} XML: parser did not complete`);
  if (error) {
    throw new Error(`cannot parse ${expectedRoot} XML: ${(error as Error).message ?? String(error)}`);
  }
  const doc = result as Record<string, unknown> | null;
  if (!doc || typeof doc !== 'object' || !(expectedRoot in doc)) {
    const found = doc && typeof doc === 'object' ? Object.keys(doc)[0] : 'nothing';
    throw new Error(`expected a <${expectedRoot}> document, found <${found}>`);
  }
  const root = doc[expectedRoot];
  return asNode(root) ?? {};
}

// ---- node accessors (explicitArray: true => children are arrays; text-only leaves are strings)

function asNode(value: unknown): XmlNode | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return { _: value };
  if (typeof value === 'object') return value as XmlNode;
  return undefined;
}

/** All child elements named `name` (empty array when absent). */
export function children(node: XmlNode | undefined, name: string): XmlNode[] {
  if (!node) return [];
  const value = node[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map(asNode).filter((n): n is XmlNode => n !== undefined);
}

/** The first child element named `name`. */
export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

/** Follows a path of element names, taking the first match at each step. */
export function childPath(node: XmlNode | undefined, ...names: string[]): XmlNode | undefined {
  let current = node;
  for (const name of names) current = child(current, name);
  return current;
}

/** Text content of an element (undefined when the element is absent). */
export function textOf(node: XmlNode | undefined): string | undefined {
  if (!node) return undefined;
  const t = node['_'];
  if (typeof t === 'string') return t;
  return '';
}

/** Text content of the first child named `name`. */
export function childText(node: XmlNode | undefined, name: string): string | undefined {
  return textOf(child(node, name));
}

/** An attribute value. */
export function attr(node: XmlNode | undefined, name: string): string | undefined {
  if (!node) return undefined;
  const attrs = node['$'] as Record<string, string> | undefined;
  if (!attrs || typeof attrs !== 'object') return undefined;
  const v = attrs[name];
  return typeof v === 'string' ? v : undefined;
}

/** Parses an integer, returning undefined for absent or non-numeric text. */
export function toInt(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (!/^-?\d+$/.test(trimmed)) return undefined;
  return Number(trimmed);
}

const UNIT_FACTORS: Record<string, number> = {
  b: 1,
  byte: 1,
  bytes: 1,
  kb: 1e3,
  k: 1024,
  kib: 1024,
  mb: 1e6,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1e9,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1e12,
  t: 1024 ** 4,
  tib: 1024 ** 4,
  pb: 1e15,
  p: 1024 ** 5,
  pib: 1024 ** 5,
  eb: 1e18,
  e: 1024 ** 6,
  eib: 1024 ** 6,
};

/**
 * Converts a libvirt scaled integer element (`<capacity unit='KiB'>42</capacity>`) to bytes.
 * `defaultUnit` is what libvirt assumes when no unit is given (bytes for storage, KiB for memory).
 */
export function scaledToBytes(node: XmlNode | undefined, defaultUnit: string): number | undefined {
  const n = toInt(textOf(node));
  if (n === undefined) return undefined;
  const unit = (attr(node, 'unit') ?? defaultUnit).toLowerCase();
  const factor = UNIT_FACTORS[unit];
  if (factor === undefined) return undefined;
  return n * factor;
}

// ---- validation

// XML 1.0 Char production, minus the C0 controls we never want in names or paths.
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const CONTROL = /[\u0000-\u001F\u007F]/;

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** Free text (descriptions): any XML-representable string; TAB/LF/CR allowed. */
export function checkText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new Error(`${field} must be a string, got ${describe(value)}`);
  if (NOT_XML_CHAR.test(value)) {
    throw new Error(`${field} contains a character that XML cannot represent: ${describe(value)}`);
  }
  return value;
}

/** A single-line, non-empty string (names, hosts, IQNs, cmdline...): no control characters. */
export function checkLine(value: unknown, field: string, opts: { allowEmpty?: boolean } = {}): string {
  const s = checkText(value, field);
  if (!opts.allowEmpty && s.length === 0) throw new Error(`${field} must not be empty`);
  if (CONTROL.test(s)) throw new Error(`${field} must not contain control characters: ${describe(s)}`);
  return s;
}

/** An object name as libvirt accepts it: non-empty, single line, no '/'. */
export function checkName(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (s.trim().length === 0) throw new Error(`${field} must not be blank`);
  if (s.includes('/')) throw new Error(`${field} must not contain '/': ${describe(s)}`);
  return s;
}

/** An absolute host path. */
export function checkAbsolutePath(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!s.startsWith('/')) throw new Error(`${field} must be an absolute path, got ${describe(s)}`);
  return s;
}

/** A non-negative safe integer (number or bigint). */
export function checkNonNegativeInt(value: unknown, field: string): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new Error(`${field} must be a non-negative integer, got ${describe(value)}`);
  }
  return n;
}

/** A positive safe integer. */
export function checkPositiveInt(value: unknown, field: string): number {
  const n = checkNonNegativeInt(value, field);
  if (n === 0) throw new Error(`${field} must be greater than zero`);
  return n;
}

/** One of a fixed set of values. */
export function checkEnum<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new Error(`${field} must be one of ${allowed.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID in its canonical 8-4-4-4-12 form. */
export function checkUuid(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!UUID.test(s)) throw new Error(`${field} must be a UUID (8-4-4-4-12 hex), got ${describe(s)}`);
  return s;
}

/** A TCP port. */
export function checkPort(value: unknown, field: string): number {
  const n = checkPositiveInt(value, field);
  if (n > 65535) throw new Error(`${field} must be at most 65535, got ${n}`);
  return n;
}

/** A host name or IP literal: single line, no whitespace, no '/'. */
export function checkHost(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (/[\s/]/.test(s)) throw new Error(`${field} must be a host name or address, got ${describe(s)}`);
  return s;
}

/** An iSCSI qualified name (iqn./eui./naa.): single line, no whitespace, no '/'. */
export function checkIqn(value: unknown, field: string): string {
  const s = checkLine(value, field);
  if (!/^(iqn\.\d{4}-\d{2}\.[^\s/]+|eui\.[0-9a-fA-F]{16}|naa\.[0-9a-fA-F]{16,32})$/.test(s)) {
    throw new Error(`${field} must be an iSCSI name (iqn.YYYY-MM.…, eui.…, naa.…), got ${describe(s)}`);
  }
  return s;
}
