// Runs bench/volume-attach.bench.ts and volume-attach-api.bench.ts with the repository's jest transform (ESM + @swc/jest). Not part of `npx jest`.
import root from '../jest.config.js';

const e2e = root.projects.find((p) => p.displayName === 'e2e');
export default { ...e2e, rootDir: '..', displayName: 'bench', testMatch: ['<rootDir>/bench/volume-attach*.bench.ts'] };
