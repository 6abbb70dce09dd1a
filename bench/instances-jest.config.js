// Runs bench/instances-*.bench.ts with the repository's jest transform (ESM + @swc/jest). Not part of `npx jest`.
// One of them: add its path, e.g. `npx jest -c bench/instances-jest.config.js bench/instances-launch.bench.ts`.
import root from '../jest.config.js';

const e2e = root.projects.find((p) => p.displayName === 'e2e');
export default { ...e2e, rootDir: '..', displayName: 'bench', testMatch: ['<rootDir>/bench/instances-*.bench.ts'] };
