/**
 * Request-shape limits of the EC2 Query API, in one place. They bound the work one request can
 * cause (parameter parsing and filter matching run on the event loop), and follow EC2 where it
 * documents a limit.
 */
export const QUERY_LIMITS = {
  /** `Filter.N` per request: EC2 allows 50 (`FilterLimitExceeded` beyond). */
  maxFilters: 50,
  /** `Filter.N.Value.M` per filter: EC2 allows 200 (`FilterLimitExceeded` beyond). */
  maxFilterValues: 200,
  /**
   * Characters (code points, an escaped character counting once) of one filter value: a tag value
   * is at most 256 characters in EC2, so any stored value can still be matched verbatim.
   */
  maxFilterValueChars: 256,
  /** Unescaped `*` and `?` in one filter value (EC2 documents no limit; ours keeps matching cheap). */
  maxFilterWildcards: 32,
  /** Members of any other list (`InstanceId.N`, `Tag.N`, ...): EC2 takes at most 1,000 ids per call. */
  maxListMembers: 1000,
  /** Largest member index `N` accepted in `Name.N`; members are numbered from 1. */
  maxMemberIndex: 100_000,
} as const;
