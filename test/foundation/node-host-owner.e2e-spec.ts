/**
 * Two clouds on one machine: a cloud's `koala up`/`koala down` act on the all-in-one node host
 * only when this cloud made it (its state lives under its own $KOALA_HOME). A test cloud's
 * `koala down` once removed the operator's running node host (koala-node1) with its guests.
 * The "other cloud's" node host here is a bare namespace this test creates and removes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@koala/config';
import { allInOneNet, nodeHostDown, nodeHostOwner, nodeHostUp } from '../../apps/koala/src/supervisor/node-host.js';

const prefix = `ko${randomBytes(3).toString('hex')}`;
const canRun = process.getuid?.() === 0;

(canRun ? describe : describe.skip)('the all-in-one node host belongs to the cloud that made it', () => {
  const homes = [mkdtempSync(join(tmpdir(), 'koala-owner-a-')), mkdtempSync(join(tmpdir(), 'koala-owner-b-'))];
  const [a, b] = homes.map((home) => loadConfig({ KOALA_HOME: home, KOALA_AIO_NETNS: prefix }));
  const net = allInOneNet(a!)!;

  afterAll(() => {
    spawnSync('ip', ['netns', 'del', net.netns]);
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  it('absent, then ours for the home holding its state and another cloud’s for any other home', () => {
    expect(nodeHostOwner(a!, net)).toBe('absent');
    execFileSync('ip', ['netns', 'add', net.netns]);
    mkdirSync(join(b!.home, 'nodes', net.netns), { recursive: true }); // as koala-node-netns.sh up makes it
    expect(nodeHostOwner(b!, net)).toBe('ours');
    expect(nodeHostOwner(a!, net)).toBe('another');
  });

  it('another cloud’s `koala down` leaves it alone, and its `koala up` refuses to share it', () => {
    expect(nodeHostDown(a!, net)).toEqual({ ok: true, skipped: expect.stringMatching(/another cloud/) });
    expect(existsSync(`/run/netns/${net.netns}`)).toBe(true);
    const up = nodeHostUp(a!, net);
    expect(up).toEqual({ error: expect.stringMatching(new RegExp(`${net.netns} is another cloud's node host.*KOALA_AIO_NETNS`)) });
    expect(existsSync(join(a!.home, 'nodes', net.netns))).toBe(false);
  });
});
