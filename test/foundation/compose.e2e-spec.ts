import { execFileSync } from 'node:child_process';
import { load as loadYaml } from 'js-yaml';

/**
 * Docker cannot run here, so the compose file is validated by a real parser (Debian's
 * docker-compose) to keep it from rotting: schema, interpolation, references between services.
 */
describe('docker-compose.yml', () => {
  const config = (): Record<string, any> =>
    loadYaml(
      execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
        env: { ...process.env, KOALA_MASTER_KEY: 'test-master-key-0123456789' },
        encoding: 'utf8',
      }),
    ) as Record<string, any>;

  it('validates and brings up the control plane: PostgreSQL, NATS, CLC, CC, SC', () => {
    const c = config();
    expect(Object.keys(c.services)).toEqual(expect.arrayContaining(['postgres', 'nats', 'migrate', 'clc', 'cc', 'sc']));
    expect(c.services.migrate.build.dockerfile).toBe('deploy/docker/Dockerfile');
    expect(c.services.clc.ports[0]).toMatchObject({ target: 8773 });
    for (const s of ['clc', 'cc', 'sc']) {
      expect(c.services[s].environment.KOALA_NATS_URL).toBe('nats://nats:4222');
      expect(c.services[s].command[0]).toMatch(/^dist\/apps\/.*\/main\.js$/);
    }
  });

  it('refuses to start without a master key', () => {
    const env = { ...process.env };
    delete env.KOALA_MASTER_KEY;
    expect(() => execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { env, stdio: 'pipe' })).toThrow(/KOALA_MASTER_KEY/);
  });
});
