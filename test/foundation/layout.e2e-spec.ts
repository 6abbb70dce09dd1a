import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** nest-cli.json (monorepo mode) and tsconfig paths must list exactly the apps and libs on disk. */
describe('monorepo layout', () => {
  const nest = JSON.parse(readFileSync('nest-cli.json', 'utf8'));
  const dirs = (d: string) =>
    readdirSync(d, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();

  it('declares every app and lib as a Nest project', () => {
    expect(nest.monorepo).toBe(true);
    const apps = Object.entries(nest.projects)
      .filter(([, p]) => (p as { type: string }).type === 'application')
      .map(([n]) => n)
      .sort();
    const libs = Object.entries(nest.projects)
      .filter(([, p]) => (p as { type: string }).type === 'library')
      .map(([n]) => n)
      .sort();
    expect(apps).toEqual(dirs('apps'));
    expect(libs).toEqual(dirs('libs'));
    for (const [, p] of Object.entries(nest.projects) as [string, { sourceRoot: string; entryFile: string }][]) {
      expect(existsSync(`${p.sourceRoot}/${p.entryFile}.ts`)).toBe(true);
    }
  });

  it('has the top level a Nest monorepo user expects', () => {
    for (const f of ['package.json', 'package-lock.json', 'nest-cli.json', 'docker-compose.yml', 'README.md', '.ci/run', 'deploy', 'test', 'apps', 'libs']) expect(existsSync(f)).toBe(true);
  });
});
