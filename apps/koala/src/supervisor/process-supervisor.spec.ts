import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@koala/config';
import { metricsEnv, ProcessSupervisor } from './process-supervisor.js';

describe('ProcessSupervisor log files', () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'koala-sup-'));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  const mode = (p: string) => statSync(p).mode & 0o777;

  it('creates $KOALA_HOME/log 0750 and component logs 0640, also tightening older world-readable ones', async () => {
    mkdirSync(join(home, 'log'), { mode: 0o755 });
    const oldLog = join(home, 'log', 'cc.log');
    writeFileSync(oldLog, 'old\n', { mode: 0o644 });
    const sup = new ProcessSupervisor(loadConfig({ KOALA_HOME: home }));
    expect(mode(join(home, 'log'))).toBe(0o750);
    const entry = join(home, 'noop.mjs');
    writeFileSync(entry, 'process.exit(0)\n');
    for (const short of ['clc', 'cc'] as const) {
      const { pid } = sup.start({ kind: 'cluster-controller', short, entry } as never, process.env);
      expect(pid).toBeGreaterThan(0);
      expect(mode(join(home, 'log', `${short}.log`))).toBe(0o640);
    }
  });
});

describe('metricsEnv (all-in-one metrics ports)', () => {
  it('gives CC, SC and NC their own port from KOALA_METRICS_PORT, and leaves 0/unset/CLC alone', () => {
    const env = { KOALA_METRICS_PORT: '9100', X: '1' };
    expect(['cc', 'sc', 'nc', 'clc'].map((short) => metricsEnv({ short } as never, env).KOALA_METRICS_PORT)).toEqual(['9100', '9101', '9102', '9100']);
    expect(metricsEnv({ short: 'nc' }, env).X).toBe('1');
    expect(metricsEnv({ short: 'nc' }, { KOALA_METRICS_PORT: '0' }).KOALA_METRICS_PORT).toBe('0');
    expect(metricsEnv({ short: 'nc' }, {}).KOALA_METRICS_PORT).toBeUndefined();
    expect(metricsEnv({ short: 'nc' }, { KOALA_METRICS_PORT: '65535' }).KOALA_METRICS_PORT).toBe('65535');
  });
});
