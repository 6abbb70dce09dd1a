// Makes `@koala/<lib>` importable from the compiled output.
// tsc resolves `@koala/*` through tsconfig `paths` but leaves the specifier as is; Node's
// ESM resolver then looks in the nearest node_modules. We write one re-export shim per
// lib into dist/node_modules, so the compiled apps run with plain `node` and no loader.
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const libs = readdirSync(join(root, 'libs'));
for (const lib of libs) {
  if (!existsSync(join(root, 'dist', 'libs', lib, 'src', 'index.js'))) continue;
  const dir = join(root, 'dist', 'node_modules', '@koala', lib);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@koala/${lib}`, type: 'module', main: 'index.js' }) + '\n');
  writeFileSync(join(dir, 'index.js'), `export * from '../../../libs/${lib}/src/index.js';\n`);
}
