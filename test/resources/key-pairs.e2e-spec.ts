// Key pairs through the EC2 endpoint with AWS SDK v3: create (RSA, ED25519), import, describe, delete,
// fingerprints checked against openssl / ssh-keygen run here.
import { execFileSync } from 'node:child_process';
import { CreateKeyPairCommand, DeleteKeyPairCommand, DescribeKeyPairsCommand, ImportKeyPairCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { startCloud, type TestCloud } from '../support/cloud.js';
import { failure, opensslDigest, sh, sshKeygen, sshKeygenSha256, withTempDir, writeSecret } from './helpers.js';

let cloud: TestCloud;
let ec2: EC2Client;

beforeAll(async () => {
  cloud = await startCloud();
  ec2 = cloud.ec2(await cloud.createAccount('keys'));
}, 60_000);
afterAll(async () => {
  await cloud?.close();
});

describe('CreateKeyPair', () => {
  it('RSA (default): PKCS#1 PEM private key returned once; fingerprint = SHA-1 of the PKCS#8 DER (openssl)', async () => {
    const k = await ec2.send(new CreateKeyPairCommand({ KeyName: 'rsa-1' }));
    expect(k.KeyName).toBe('rsa-1');
    expect(k.KeyPairId).toMatch(/^key-[0-9a-f]{17}$/);
    expect(k.KeyMaterial).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    withTempDir((dir) => {
      const pem = writeSecret(dir, 'rsa.pem', k.KeyMaterial!);
      const der = execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', pem, '-outform', 'DER']);
      expect(k.KeyFingerprint).toBe(opensslDigest('sha1', der));
      expect(sh('openssl', ['rsa', '-in', pem, '-noout', '-text'])).toMatch(/2048 bit/);
    });
    const d = await ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['rsa-1'], IncludePublicKey: true }));
    expect(d.KeyPairs).toHaveLength(1);
    const kp = d.KeyPairs![0]!;
    expect(kp).toMatchObject({ KeyName: 'rsa-1', KeyPairId: k.KeyPairId, KeyType: 'rsa', KeyFingerprint: k.KeyFingerprint, Tags: [] });
    expect(kp.CreateTime).toBeInstanceOf(Date);
    expect(kp.PublicKey).toMatch(/^ssh-rsa AAAA/);
    // never returned again
    expect(JSON.stringify(d)).not.toContain('PRIVATE KEY');
    withTempDir((dir) => {
      const derived = sh('ssh-keygen', ['-y', '-f', writeSecret(dir, 'k', k.KeyMaterial!)]);
      expect(kp.PublicKey!.split(' ')[1]).toBe(derived.split(' ')[1]);
    });
  });

  it('ED25519: OpenSSH private key; fingerprint as ssh-keygen -l -E sha256 (with = padding)', async () => {
    const k = await ec2.send(new CreateKeyPairCommand({ KeyName: 'ed-1', KeyType: 'ed25519', KeyFormat: 'pem' }));
    expect(k.KeyMaterial).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(k.KeyFingerprint).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    withTempDir((dir) => {
      const path = writeSecret(dir, 'ed', k.KeyMaterial!);
      expect(k.KeyFingerprint!.replace(/=$/, '')).toBe(sshKeygenSha256(path));
    });
    const d = await ec2.send(new DescribeKeyPairsCommand({ KeyPairIds: [k.KeyPairId!] }));
    expect(d.KeyPairs![0]).toMatchObject({ KeyName: 'ed-1', KeyType: 'ed25519', KeyFingerprint: k.KeyFingerprint });
    expect(d.KeyPairs![0]!.PublicKey).toBeUndefined();
  });

  it('with TagSpecification (resource type key-pair only)', async () => {
    const k = await ec2.send(new CreateKeyPairCommand({ KeyName: 'tagged', TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'env', Value: 'prod' }] }] }));
    expect(k.Tags).toEqual([{ Key: 'env', Value: 'prod' }]);
    const e = await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'badtag', TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }] })));
    expect(e).toMatchObject({ name: 'InvalidParameterValue', status: 400 });
    // nothing half-written
    expect((await failure(ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['badtag'] })))).name).toBe('InvalidKeyPair.NotFound');
    const reserved = await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'awstag', TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'aws:x', Value: 'b' }] }] })));
    expect(reserved.name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['awstag'] })))).name).toBe('InvalidKeyPair.NotFound');
  });

  it('errors: duplicate, name rules, key type, DryRun', async () => {
    expect(await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'rsa-1' })))).toMatchObject({
      name: 'InvalidKeyPair.Duplicate',
      code: 'InvalidKeyPair.Duplicate',
      status: 400,
      message: "The keypair 'rsa-1' already exists.",
    });
    expect((await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'x'.repeat(256) })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'clé' })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'z', KeyType: 'dsa' as never })))).name).toBe('InvalidParameterValue');
    expect((await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'z', KeyFormat: 'ppk' })))).name).toBe('InvalidParameterValue');
    expect(await failure(ec2.send(new CreateKeyPairCommand({ KeyName: 'dry', DryRun: true })))).toMatchObject({ name: 'DryRunOperation', status: 412 });
    expect((await failure(ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['dry'] })))).name).toBe('InvalidKeyPair.NotFound');
    const long = await ec2.send(new CreateKeyPairCommand({ KeyName: 'k'.repeat(255), KeyType: 'ed25519' }));
    expect(long.KeyName).toHaveLength(255);
  });
});

describe('ImportKeyPair', () => {
  it('OpenSSH RSA line: fingerprint = MD5 of the DER SubjectPublicKeyInfo', async () => {
    await withTempDir(async (dir) => {
      const { publicLine } = sshKeygen(dir, 'rsa');
      const spki = sh('ssh-keygen', ['-e', '-m', 'PKCS8', '-f', `${dir}/k.pub`]);
      const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'DER'], { input: spki });
      const want = opensslDigest('md5', der);
      const r = await ec2.send(new ImportKeyPairCommand({ KeyName: 'imp-rsa', PublicKeyMaterial: Buffer.from(publicLine) }));
      expect(r).toMatchObject({ KeyName: 'imp-rsa', KeyFingerprint: want });
      expect(r.KeyPairId).toMatch(/^key-[0-9a-f]{17}$/);
      const d = await ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['imp-rsa'], IncludePublicKey: true }));
      expect(d.KeyPairs![0]).toMatchObject({ KeyType: 'rsa', KeyFingerprint: want, PublicKey: publicLine });
      // the same key as PEM and as DER SubjectPublicKeyInfo
      const pem = await ec2.send(new ImportKeyPairCommand({ KeyName: 'imp-pem', PublicKeyMaterial: Buffer.from(spki) }));
      expect(pem.KeyFingerprint).toBe(want);
      const derKey = await ec2.send(new ImportKeyPairCommand({ KeyName: 'imp-der', PublicKeyMaterial: der }));
      expect(derKey.KeyFingerprint).toBe(want);
    });
  });

  it('OpenSSH ED25519 line: base64 SHA-256 fingerprint', async () => {
    await withTempDir(async (dir) => {
      const { publicLine } = sshKeygen(dir, 'ed25519');
      const r = await ec2.send(
        new ImportKeyPairCommand({
          KeyName: 'imp-ed',
          PublicKeyMaterial: Buffer.from(publicLine),
          TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'src', Value: 'laptop' }] }],
        }),
      );
      expect(r.KeyFingerprint!.replace(/=$/, '')).toBe(sshKeygenSha256(`${dir}/k.pub`));
      expect(r.Tags).toEqual([{ Key: 'src', Value: 'laptop' }]);
      const d = await ec2.send(
        new DescribeKeyPairsCommand({
          Filters: [
            { Name: 'key-type', Values: ['ed25519'] },
            { Name: 'key-name', Values: ['imp-*'] },
          ],
        }),
      );
      expect(d.KeyPairs!.map((k) => k.KeyName)).toEqual(['imp-ed']);
    });
  });

  it('bad material → InvalidKeyPair.Format; duplicate name → InvalidKeyPair.Duplicate', async () => {
    expect(await failure(ec2.send(new ImportKeyPairCommand({ KeyName: 'junk', PublicKeyMaterial: Buffer.from('not a key') })))).toMatchObject({
      name: 'InvalidKeyPair.Format',
      status: 400,
    });
    expect((await failure(ec2.send(new ImportKeyPairCommand({ KeyName: 'dss', PublicKeyMaterial: Buffer.from('ssh-dss AAAAB3NzaC1kc3MAAAA= x') })))).name).toBe('InvalidKeyPair.Format');
    await withTempDir(async (dir) => {
      const { publicLine } = sshKeygen(dir, 'ed25519');
      expect((await failure(ec2.send(new ImportKeyPairCommand({ KeyName: 'rsa-1', PublicKeyMaterial: Buffer.from(publicLine) })))).name).toBe('InvalidKeyPair.Duplicate');
    });
  });
});

describe('DescribeKeyPairs', () => {
  it('filters by key-name, key-pair-id, fingerprint, tag:*, tag-key; unknown names/ids/filters are errors', async () => {
    const all = (await ec2.send(new DescribeKeyPairsCommand({}))).KeyPairs!;
    const rsa = all.find((k) => k.KeyName === 'rsa-1')!;
    const names = async (Filters: { Name: string; Values: string[] }[]) => (await ec2.send(new DescribeKeyPairsCommand({ Filters }))).KeyPairs!.map((k) => k.KeyName).sort();
    expect(await names([{ Name: 'key-name', Values: ['rsa-1', 'ed-1'] }])).toEqual(['ed-1', 'rsa-1']);
    expect(await names([{ Name: 'key-pair-id', Values: [rsa.KeyPairId!] }])).toEqual(['rsa-1']);
    expect(await names([{ Name: 'fingerprint', Values: [rsa.KeyFingerprint!] }])).toEqual(['rsa-1']);
    expect(await names([{ Name: 'tag:env', Values: ['prod'] }])).toEqual(['tagged']);
    expect(await names([{ Name: 'tag-key', Values: ['src'] }])).toEqual(['imp-ed']);
    expect(await names([{ Name: 'tag-value', Values: ['pr?d'] }])).toEqual(['tagged']);
    expect(await names([{ Name: 'key-name', Values: ['nothing-*'] }])).toEqual([]);
    expect(await failure(ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['nope'] })))).toMatchObject({
      name: 'InvalidKeyPair.NotFound',
      message: "The key pair 'nope' does not exist",
    });
    expect((await failure(ec2.send(new DescribeKeyPairsCommand({ KeyPairIds: ['key-00000000000000000'] })))).name).toBe('InvalidKeyPair.NotFound');
    expect((await failure(ec2.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'color', Values: ['x'] }] })))).name).toBe('InvalidParameterValue');
  });
});

describe('DeleteKeyPair', () => {
  it('by name and by id; a missing name succeeds, a missing id is NotFound; tags go with the key', async () => {
    const k = await ec2.send(new CreateKeyPairCommand({ KeyName: 'to-delete', KeyType: 'ed25519', TagSpecifications: [{ ResourceType: 'key-pair', Tags: [{ Key: 'gone', Value: '1' }] }] }));
    expect((await failure(ec2.send(new DeleteKeyPairCommand({ KeyName: 'to-delete', DryRun: true })))).name).toBe('DryRunOperation');
    const r = await ec2.send(new DeleteKeyPairCommand({ KeyName: 'to-delete' }));
    expect(r.Return).toBe(true);
    expect(r.KeyPairId).toBe(k.KeyPairId);
    expect((await ec2.send(new DescribeKeyPairsCommand({ Filters: [{ Name: 'tag-key', Values: ['gone'] }] }))).KeyPairs).toEqual([]);
    expect((await ec2.send(new DeleteKeyPairCommand({ KeyName: 'to-delete' }))).Return).toBe(true);
    expect((await failure(ec2.send(new DeleteKeyPairCommand({ KeyPairId: k.KeyPairId })))).name).toBe('InvalidKeyPair.NotFound');
    const k2 = await ec2.send(new CreateKeyPairCommand({ KeyName: 'by-id', KeyType: 'ed25519' }));
    expect((await ec2.send(new DeleteKeyPairCommand({ KeyPairId: k2.KeyPairId }))).Return).toBe(true);
    expect((await failure(ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['by-id'] })))).name).toBe('InvalidKeyPair.NotFound');
    expect((await failure(ec2.send(new DeleteKeyPairCommand({})))).name).toBe('MissingParameter');
  });
});
