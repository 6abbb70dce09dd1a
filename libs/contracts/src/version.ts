/** Koala's version as reported by every component (kept equal to package.json by a test). */
export const KOALA_VERSION = '0.1.0';
