// ESLint for Koala (run from the repository root: `npm run lint`). Type-aware typescript-eslint
// over apps, libs, test and bench, plus import boundaries that encode the layering:
// libs never import apps; apps never reach into another app; CLC services hold no ORM code.
import tseslint from 'typescript-eslint';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const appRooms = ['cloud-controller', 'cluster-controller', 'node-controller', 'storage-controller', 'koala'];
/** What an app may not import (flat config replaces a rule wholesale, so every block repeats these). */
const appPatterns = (app) => [
  { group: appRooms.filter((a) => a !== app).map((a) => `**/${a}/src/**`), message: 'an app never imports another app: share through libs/' },
  { group: ['**/libs/*/src/**'], message: 'import libraries as @koala/<lib>' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'tools/**', 'build/**', 'deploy/**', '**/*.js', '**/*.mjs', '**/*.cjs'] },
  {
    files: ['apps/**/*.ts', 'libs/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { project: join(root, 'tsconfig.json'), tsconfigRootDir: root } },
    rules: {
      // Correctness rules that have caught real bugs in async daemons.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/no-duplicate-enum-values': 'error',
      '@typescript-eslint/no-unsafe-declaration-merging': 'error',
      'no-debugger': 'error',
      'no-dupe-keys': 'error',
      'no-self-assign': 'error',
      'no-unreachable': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    files: ['libs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/apps/**', '../../apps/*', '../../../apps/*'], message: 'libs never import apps' }] }],
    },
  },
  ...appRooms.map((app) => ({
    files: [`apps/${app}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { patterns: appPatterns(app) }] },
  })),
  {
    files: ['apps/cloud-controller/src/**/*.service.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'typeorm', message: 'CLC services hold rules; queries belong in a *.repository.ts' }], patterns: appPatterns('cloud-controller') },
      ],
    },
  },
);
