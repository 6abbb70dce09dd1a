/**
 * @koala/ec2-query — EC2 Query protocol: parameter parsing, errors, XML, filters, pagination,
 * DryRun and resource ids; and the STS/IAM Query dialect some EC2 clients ask first. Pure code: no Nest, no database.
 *
 * Typical handler:
 * ```ts
 * const p = Params.from(rawBody);                       // or merge query + body maps
 * const { action, version } = readActionAndVersion(p);
 * const filters = readFilters(p);
 * checkDryRun(p, allowed);
 * const keys = applyFilters(all, filters, KEY_PAIR_FILTERS, (k) => k.tags);
 * const { page, nextToken } = paginate(keys, { maxResults: p.int('MaxResults'), nextToken: p.str('NextToken') });
 * res.status(200).type(EC2_XML_CONTENT_TYPE).set('x-amzn-requestid', rid)
 *    .send(renderResponse(action, version, rid, { keySet: page.map(...), nextToken }));
 * // on error: const e = renderError(err, rid); res.status(e.status).type(EC2_XML_CONTENT_TYPE).send(e.body);
 * ```
 */
export { Ec2Error, EC2_ERROR_STATUS, NOT_FOUND_MESSAGES, MALFORMED_MESSAGES, statusForCode, isEc2Error, type NotFoundCode, type MalformedCode } from './errors.js';
export {
  parseQueryParams,
  Params,
  readTags,
  readTagSpecifications,
  readPermissionChange,
  readActionAndVersion,
  DEFAULT_EC2_VERSION,
  type ParamReadRecorder,
  type StrOptions,
  type ListLimit,
  type IntOptions,
  type Filter,
  type Tag,
  type TagSpecification,
  type PermissionSide,
  type PermissionChange,
} from './params.js';
export { renderResponse, renderError, renderXmlBody, toEc2Error, escapeXml, formatTimestamp, EC2_XML_CONTENT_TYPE, XmlNamespaced, type XmlValue, type RenderedError } from './xml.js';
export { applyFilters, validateFilters, compileFilterPattern, checkFilterValue, readFilters, filterPatternToSql, type FilterSpec, type FilterScalar, type TagsOf } from './filters.js';
export { paginate, capMaxResults, keysetStart, keysetToken, INVALID_TOKEN_CODE, type PaginateOptions, type Page, type KeysetStart } from './pagination.js';
export { QUERY_LIMITS } from './limits.js';
export { renderQueryResponse, renderQueryError, STS_API, IAM_API, type QueryApi } from './query-dialect.js';
export { checkDryRun } from './dry-run.js';
export { newId, isValidId, idPrefixOf, ID_PREFIXES, type IdKind, type IdPrefix, type RandomSource } from './ids.js';
export { readRequestParams, parsePairs, isFormContentType, type ParamSource, type RequestParams } from './request-params.js';
export { checkParamShapes, CompiledShapes, isCommonParam, shapeOf, FILTER_SHAPES, TAG_SPECIFICATION_SHAPES, PAGE_SHAPES, type ParamShapes } from './param-shapes.js';
export { validateParamMap, DEFAULT_PARAM_LIMITS, type ParamLimits } from './validate.js';
