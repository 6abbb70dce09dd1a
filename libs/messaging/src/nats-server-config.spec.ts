import { natsServerConfig } from './nats-server-config.js';

describe('natsServerConfig', () => {
  const pw = 'abcdefghijklmnopqrstuv';
  it('writes one user per principal with its permissions and JetStream', () => {
    const text = natsServerConfig({ host: '127.0.0.1', port: 4223, storeDir: '/var/lib/koala/nats', users: [{ principal: { kind: 'nc', zone: 'z1', node: 'n1' }, password: pw }] });
    const conf = JSON.parse(text.slice(text.indexOf('\n') + 1));
    expect(conf).toMatchObject({ host: '127.0.0.1', port: 4223, jetstream: { store_dir: '/var/lib/koala/nats' } });
    expect(conf.authorization.users[0]).toMatchObject({ user: 'nc-n1', password: pw, permissions: { allow_responses: true } });
    expect(conf.authorization.users[0].permissions.subscribe.allow).toContain('koala.v1.zone.z1.node.n1.*');
  });

  it('refuses weak passwords and duplicate users', () => {
    expect(() => natsServerConfig({ host: 'h', port: 1, storeDir: '/x', users: [{ principal: { kind: 'clc' }, password: 'short' }] })).toThrow(/16\+/);
    expect(() =>
      natsServerConfig({
        host: 'h',
        port: 1,
        storeDir: '/x',
        users: [
          { principal: { kind: 'clc' }, password: pw },
          { principal: { kind: 'clc' }, password: pw },
        ],
      }),
    ).toThrow(/twice/);
  });
});
