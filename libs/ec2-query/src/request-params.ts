import { Ec2Error } from './errors.js';

/** The parts of an HTTP request that carry EC2 Query parameters. */
export interface ParamSource {
  method: string;
  /** Raw query string, without `?` (a leading one is ignored). */
  query: string;
  /** Headers with lower-cased names (Node's `req.headers`). */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  rawBody: Buffer;
}

/** The parameters of one request: the pairs as sent, and the flat map handlers read. */
export interface RequestParams {
  /** Decoded query-string pairs, in order, duplicates kept. */
  query: ReadonlyArray<readonly [string, string]>;
  /** Decoded form-body pairs, in order, duplicates kept ([] unless a POST form body). */
  body: ReadonlyArray<readonly [string, string]>;
  /** Query pairs, then body pairs; the first occurrence of a name wins. */
  map: Readonly<Record<string, string>>;
}

const FORM = 'application/x-www-form-urlencoded';

/** True for `application/x-www-form-urlencoded` (any parameters, any case); the media type must match exactly. */
export function isFormContentType(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase() === FORM;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new Ec2Error('MalformedQueryString', 'The query string contains a malformed percent-encoding');
  }
}

/** `a=1&b=2` → decoded pairs, in order; duplicates kept; malformed escapes → `MalformedQueryString`. */
export function parsePairs(qs: string): Array<[string, string]> {
  const s = qs.startsWith('?') ? qs.slice(1) : qs;
  if (!s) return [];
  const out: Array<[string, string]> = [];
  for (const part of s.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    out.push(eq < 0 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
  }
  return out;
}

function header(h: ParamSource['headers'], name: string): string | undefined {
  const v = h[name];
  return v === undefined ? undefined : typeof v === 'string' ? v : v.join(',');
}

/**
 * The one reading of a request's parameters, used both to verify a SigV2 signature and to
 * dispatch: a verifier and a dispatcher that read the body differently let a replayed request
 * pass verification and lose signed parameters on the way to the handler.
 *
 * A POST body is form data (`application/x-www-form-urlencoded`, or no content type); any
 * other non-empty POST body is refused (`InvalidParameterValue`, 400). Bodies of other methods
 * carry no parameters.
 */
export function readRequestParams(req: ParamSource): RequestParams {
  const query = parsePairs(req.query);
  let body: Array<[string, string]> = [];
  if (req.method.toUpperCase() === 'POST' && req.rawBody.length > 0) {
    const ct = header(req.headers, 'content-type');
    if (ct !== undefined && ct.trim() !== '' && !isFormContentType(ct)) {
      throw new Ec2Error('InvalidParameterValue', `The request body must be ${FORM}; Content-Type ${JSON.stringify(ct.slice(0, 100))} is not supported.`);
    }
    body = parsePairs(req.rawBody.toString('utf8'));
  }
  const map: Record<string, string> = Object.create(null);
  for (const [k, v] of [...query, ...body]) if (!(k in map)) map[k] = v;
  return { query, body, map };
}
