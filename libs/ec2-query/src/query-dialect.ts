import { escapeXml, formatTimestamp, toEc2Error, type RenderedError, type XmlValue } from './xml.js';

/**
 * The AWS Query protocol of STS and IAM (not EC2's dialect): `<{Action}Response>` with a
 * `<{Action}Result>` and `<ResponseMetadata>`, lists as `<member>`, errors as
 * `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
 */
export interface QueryApi {
  /** Which service's dialect (STS and IAM share it, with their own namespaces). */
  service: 'sts' | 'iam';
  namespace: string;
}

export const STS_API: QueryApi = { service: 'sts', namespace: 'https://sts.amazonaws.com/doc/2011-06-15/' };
export const IAM_API: QueryApi = { service: 'iam', namespace: 'https://iam.amazonaws.com/doc/2010-05-08/' };

function element(name: string, v: XmlValue, out: string[]): void {
  if (v === undefined || v === null) return;
  if (Array.isArray(v)) {
    out.push(`<${name}>`);
    for (const m of v as readonly XmlValue[]) element('member', m, out);
    out.push(`</${name}>`);
  } else if (v instanceof Date) {
    out.push(`<${name}>${formatTimestamp(v)}</${name}>`);
  } else if (typeof v === 'object' && !Buffer.isBuffer(v)) {
    out.push(`<${name}>`);
    for (const [k, c] of Object.entries(v as Record<string, XmlValue>)) element(k, c, out);
    out.push(`</${name}>`);
  } else {
    out.push(`<${name}>${escapeXml(String(v))}</${name}>`);
  }
}

export function renderQueryResponse(api: QueryApi, action: string, requestId: string, result: Record<string, XmlValue>): string {
  const out: string[] = [];
  element(`${action}Result`, result, out);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<${action}Response xmlns="${api.namespace}">${out.join('')}` +
    `<ResponseMetadata><RequestId>${escapeXml(requestId)}</RequestId></ResponseMetadata></${action}Response>`
  );
}

/** EC2's unknown/inactive key (`AuthFailure` 401) is STS/IAM's `InvalidClientTokenId` 403. */
export function renderQueryError(api: QueryApi, err: unknown, requestId: string): RenderedError {
  const e = toEc2Error(err);
  const [code, status] = e.code === 'AuthFailure' ? ['InvalidClientTokenId', 403] : [e.code, e.httpStatus];
  const message = code === 'InvalidClientTokenId' ? 'The security token included in the request is invalid.' : e.message;
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<ErrorResponse xmlns="${api.namespace}"><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type>` +
    `<Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error>` +
    `<RequestId>${escapeXml(requestId)}</RequestId></ErrorResponse>`;
  return { status, code, body };
}
