// Runs bench/network.bench.ts with the repository's jest transform (ESM + @swc/jest). Not part of `npx jest`.
//   NODE_OPTIONS=--experimental-vm-modules npx jest -c bench/network-jest.config.js
import root from '../jest.config.js';

const e2e = root.projects.find((p) => p.displayName === 'e2e');
export default { ...e2e, rootDir: '..', displayName: 'bench', testMatch: ['<rootDir>/bench/network.bench.ts'] };
