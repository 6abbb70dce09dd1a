// ImagesService on in-memory fakes of its repository (ImagesStore) and ports (blob store, fetcher,
// tags, quotas, image usage): its own rules, no database. The real repository is tested by
// test/images-api/*.e2e-spec.ts on PostgreSQL.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Ec2Error, Params, type Tag } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import type { QuotaRequest } from '../quotas/quota-rules.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import type { Ec2Context } from '../ec2/ec2-action.decorator.js';
import type { BlobStore, PutResult } from './blob-store.js';
import { BlobUrlSigner } from './blob-url-signer.js';
import { FetchError, type ImageFetcher } from './image-fetcher.js';
import type { ImageUsage } from './image-usage.port.js';
import { ImagesHandlers } from './images.handlers.js';
import type { ImageRow, ImagesStore, ImageUpdate, ScopedImage, StoredBlob, Tx } from './images.repository.js';
import { ImagesService, type ImageQuotas } from './images.service.js';
import { codeOf } from '../testing/ec2-code.js';
import { FakeTags } from '../tags/testing/fake-tags.js';

const TX = { fakeTx: true } as unknown as Tx;
const now = new Date('2026-12-01T00:00:00Z');
const ADMIN: Caller = { id: '000000000001', isAdmin: true };
const ALICE: Caller = { id: '111111111111', isAdmin: false };
const BOB: Caller = { id: '222222222222', isAdmin: false };
const CAROL: Caller = { id: '333333333333', isAdmin: false };

/** ImagesStore in memory; a transaction that throws leaves the state as it was. */
class FakeImagesStore implements ImagesStore {
  images = new Map<string, ImageRow>();
  grants = new Map<string, Set<string>>();
  adminId: string | undefined = ADMIN.id;
  /** Make the next insert lose a concurrent race on the name. */
  loseNextInsert = false;
  readonly pool = TX;

  async transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const images = new Map([...this.images].map(([k, v]) => [k, { ...v }]));
    const grants = new Map([...this.grants].map(([k, v]) => [k, new Set(v)]));
    try {
      return await work(TX);
    } catch (e) {
      this.images = images;
      this.grants = grants;
      throw e;
    }
  }
  private registered(): ImageRow[] {
    return [...this.images.values()].filter((i) => i.deregisteredAt === null).sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  async owners(_tx: Tx, ids: readonly string[]) {
    return new Map(
      this.registered()
        .filter((i) => ids.includes(i.id))
        .map((i) => [i.id, i.accountId]),
    );
  }
  async pendingFetches() {
    return this.registered().filter((i) => i.state === 'pending');
  }
  async lockDigest() {}
  async lockName() {}
  async findByName(_tx: Tx, accountId: string, name: string) {
    return this.registered().find((i) => i.accountId === accountId && i.name === name);
  }
  async insert(_tx: Tx, row: ImageRow) {
    if (this.loseNextInsert) {
      this.loseNextInsert = false;
      return false;
    }
    if (await this.findByName(TX, row.accountId, row.name)) return false;
    this.images.set(row.id, { ...row });
    return true;
  }
  async findRegistered(_tx: Tx, id: string, accountId: string): Promise<ScopedImage | undefined> {
    const i = this.images.get(id);
    return i && i.deregisteredAt === null ? { ...i, grantedToCaller: !!this.grants.get(id)?.has(accountId) } : undefined;
  }
  async listVisible(caller: Caller, ids: readonly string[]) {
    return this.registered().filter((i) => (!ids.length || ids.includes(i.id)) && allows(accessOf(caller, { ...i, grantedToCaller: !!this.grants.get(i.id)?.has(caller.id) }), 'see'));
  }
  async listRegistered() {
    return this.registered().sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? -1 : 1));
  }
  async permissionsOf(imageIds: readonly string[]) {
    return new Map([...this.grants].filter(([id, s]) => imageIds.includes(id) && s.size).map(([id, s]) => [id, new Set(s)]));
  }
  async adminAccountId() {
    return this.adminId;
  }
  async markAvailable(_tx: Tx, id: string, blob: StoredBlob) {
    const i = this.images.get(id);
    if (!i || i.state !== 'pending' || i.deregisteredAt !== null) return false;
    Object.assign(i, { state: 'available', blobSha256: blob.sha256, sizeBytes: blob.size, format: blob.format, stateReasonCode: null, stateReasonMessage: null, fetchLocation: null });
    return true;
  }
  async markFailed(id: string, reason: { code: string; message: string }) {
    const i = this.images.get(id);
    if (i && i.state === 'pending' && i.deregisteredAt === null) Object.assign(i, { state: 'failed', stateReasonCode: reason.code, stateReasonMessage: reason.message, fetchLocation: null });
  }
  async update(_tx: Tx, id: string, change: ImageUpdate) {
    const i = this.images.get(id)!;
    for (const [k, v] of Object.entries(change)) if (v !== undefined) Object.assign(i, { [k]: v });
  }
  async deregister(_tx: Tx, id: string, at: Date) {
    this.images.get(id)!.deregisteredAt = at;
    this.grants.delete(id);
  }
  async grant(_tx: Tx, id: string, accountIds: readonly string[]) {
    if (!accountIds.length) return;
    const s = this.grants.get(id) ?? new Set();
    for (const a of accountIds) s.add(a);
    this.grants.set(id, s);
  }
  async revoke(_tx: Tx, id: string, accountIds?: readonly string[]) {
    if (accountIds === undefined) this.grants.delete(id);
    else for (const a of accountIds) this.grants.get(id)?.delete(a);
  }
  async imagesOfBlob(_tx: Tx, sha256: string) {
    return [...this.images.values()].filter((i) => i.blobSha256 === sha256).map((i) => ({ id: i.id, deregisteredAt: i.deregisteredAt }));
  }
  async referencing(_tx: Tx, ids: readonly string[]) {
    return [...this.images.values()].filter((i) => ids.includes(i.kernelId ?? '') || ids.includes(i.ramdiskId ?? '')).map((i) => i.id);
  }
}

/** Blobs in memory, addressed by sha256; every blob dense (never compacted). */
class FakeBlobs implements BlobStore {
  readonly blobs = new Map<string, Buffer>();
  async put(source: Readable | AsyncIterable<Buffer>): Promise<PutResult> {
    const chunks: Buffer[] = [];
    for await (const c of source) chunks.push(Buffer.from(c));
    return this.add(Buffer.concat(chunks));
  }
  add(bytes: Buffer): PutResult {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    this.blobs.set(sha256, bytes);
    return { sha256, size: bytes.length };
  }
  async putRawDisk(): Promise<PutResult> {
    throw new Error('not used');
  }
  pathOf(sha256: string) {
    return `/fake/${sha256}`;
  }
  async size(sha256: string) {
    return this.blobs.get(sha256)?.length;
  }
  async allocated(sha256: string) {
    return this.blobs.get(sha256)?.length;
  }
  async open(): Promise<Readable> {
    throw new Error('not used');
  }
  async head(sha256: string, n: number) {
    return (this.blobs.get(sha256) ?? Buffer.alloc(0)).subarray(0, n);
  }
  async delete(sha256: string) {
    return this.blobs.delete(sha256);
  }
  async list() {
    return [...this.blobs.keys()];
  }
}

/** Answers each URL with the bytes configured for it, or a 404 FetchError. */
class FakeFetcher implements ImageFetcher {
  readonly bodies = new Map<string, Buffer>();
  async open(url: string) {
    const b = this.bodies.get(url);
    if (!b) throw new FetchError('Client.InvalidImageLocation', 'The image location could not be fetched.');
    return { body: Readable.from([b]), contentLength: b.length };
  }
}

class FakeQuotas implements ImageQuotas {
  readonly asked: QuotaRequest[] = [];
  refuse = false;
  async enforce(_tx: Tx, _caller: Caller, request: QuotaRequest) {
    this.asked.push(request);
    if (this.refuse) throw new Ec2Error('ImageLimitExceeded', 'too many images');
  }
}

class FakeUsage implements ImageUsage {
  readonly running = new Set<string>();
  async imagesInUse(ids: readonly string[]) {
    return new Set(ids.filter((id) => this.running.has(id)));
  }
}

let repo: FakeImagesStore;
let blobs: FakeBlobs;
let fetcher: FakeFetcher;
let tags: FakeTags;
let quotas: FakeQuotas;
let usage: FakeUsage;
let service: ImagesService;
let handlers: ImagesHandlers;

beforeEach(() => {
  repo = new FakeImagesStore();
  blobs = new FakeBlobs();
  fetcher = new FakeFetcher();
  tags = new FakeTags();
  quotas = new FakeQuotas();
  usage = new FakeUsage();
  const config = { publicEndpoint: 'http://127.0.0.1:8773', imageMaxBytes: 1 << 20, imageFetchTimeoutMs: 5000, imageUrlTtlSeconds: 600 };
  const master = 'test-master-key';
  service = new ImagesService(repo, blobs, fetcher, new BlobUrlSigner(master), tags, usage, { now: () => now }, config, new TaggableResources(), master, undefined, quotas);
  handlers = new ImagesHandlers(service);
});

const URL_OK = 'http://images.test/disk.img';
let served = 0;

/** Registers a machine image of `who` and waits for its fetch: `available`. */
async function registered(who: Caller, name: string, opts: { public?: boolean; bytes?: Buffer; tags?: Tag[] } = {}): Promise<string> {
  const url = `http://images.test/${name}-${served++}.img`;
  fetcher.bodies.set(url, opts.bytes ?? Buffer.from(`disk of ${name}`));
  const specs = opts.tags ? [{ resourceType: 'image', tags: opts.tags }] : [];
  const image = await service.register(who, now, { name, imageLocation: url, tagSpecifications: specs });
  await service.idle();
  if (opts.public) await service.modifyAttribute(who, image.id, { add: { accounts: [], all: true }, remove: { accounts: [], all: false } });
  return image.id;
}

function ctx(account: Caller, params: Record<string, string>): Ec2Context {
  return { requestId: 'r', action: 'x', version: '2016-11-15', params: Params.from(params), account: { ...account, name: 'n' }, accessKeyId: 'AKIA', now };
}

const share = (accounts: string[]) => ({ add: { accounts, all: false }, remove: { accounts: [], all: false } });
const unshare = (accounts: string[]) => ({ add: { accounts: [], all: false }, remove: { accounts, all: false } });
const ids = async (who: Caller, q: Partial<Parameters<ImagesService['describe']>[1]> = {}) =>
  (await service.describe(who, { imageIds: [], owners: [], executableBy: [], filters: [], ...q })).items.map((v) => v.image.id);

describe('RegisterImage', () => {
  it('writes a pending image (quota asked, tags applied) that becomes available once fetched', async () => {
    fetcher.bodies.set(URL_OK, Buffer.from('some disk'));
    const image = await service.register(ALICE, now, { name: 'my-image', imageLocation: URL_OK, tagSpecifications: [{ resourceType: 'image', tags: [{ key: 'k', value: 'v' }] }] });
    expect(image).toMatchObject({ state: 'pending', accountId: ALICE.id, imageType: 'machine', virtualizationType: 'hvm', rootDeviceName: '/dev/sda1', isPublic: false });
    expect(image.id).toMatch(/^emi-/);
    expect(quotas.asked).toEqual([{ kind: 'image', fetch: true }]);
    expect(tags.tags.get(image.id)).toEqual([{ key: 'k', value: 'v' }]);
    await service.idle();
    const row = repo.images.get(image.id)!;
    expect(row).toMatchObject({ state: 'available', sizeBytes: 9, format: 'raw' });
    expect(blobs.blobs.has(row.blobSha256!)).toBe(true);
  });

  it('a fetch that fails leaves the image failed with the reason shown to the tenant', async () => {
    const image = await service.register(ALICE, now, { name: 'broken', imageLocation: 'http://images.test/missing', tagSpecifications: [] });
    await service.idle();
    expect(repo.images.get(image.id)).toMatchObject({ state: 'failed', stateReasonCode: 'Client.InvalidImageLocation' });
  });

  it.each([
    ['a malformed name', { name: 'x' }, 'InvalidAMIName.Malformed'],
    ['a non-http location', { imageLocation: 'file:///etc/passwd' }, 'InvalidParameterValue'],
    ['a kernel for an hvm image', { virtualizationType: 'hvm' as const, kernelId: 'eki-0123456789abcdef0' }, 'InvalidParameterCombination'],
    ['a paravirtual machine without kernel', { virtualizationType: 'paravirtual' as const }, 'MissingParameter'],
    ['a kernel for a kernel image', { imageType: 'kernel' as const, kernelId: 'eki-0123456789abcdef0' }, 'InvalidParameterCombination'],
    ['a bad root device name', { rootDeviceName: 'sda1' }, 'InvalidParameterValue'],
    ['an unknown kernel', { kernelId: 'eki-0123456789abcdef0' }, 'InvalidAMIID.NotFound'],
  ])('refuses %s, writing nothing', async (_what, change, code) => {
    expect(await codeOf(service.register(ALICE, now, { name: 'img', imageLocation: URL_OK, tagSpecifications: [], ...change }))).toBe(code);
    expect(repo.images.size).toBe(0);
  });

  it('a kernel of another account is usable only when shared with the caller', async () => {
    fetcher.bodies.set(URL_OK, Buffer.from('kernel'));
    const k = await service.register(BOB, now, { name: 'kern-k', imageType: 'kernel', imageLocation: URL_OK, tagSpecifications: [] });
    await service.idle();
    const input = { name: 'pv-image', imageLocation: URL_OK, kernelId: k.id, tagSpecifications: [] };
    expect(await codeOf(service.register(ALICE, now, input))).toBe('InvalidAMIID.NotFound');
    await service.modifyAttribute(BOB, k.id, share([ALICE.id]));
    expect((await service.register(ALICE, now, input)).virtualizationType).toBe('paravirtual');
    await service.idle();
  });

  it('a name in use (or taken concurrently) is InvalidAMIName.Duplicate; another account may use it', async () => {
    fetcher.bodies.set(URL_OK, Buffer.from('d'));
    await service.register(ALICE, now, { name: 'same', imageLocation: URL_OK, tagSpecifications: [] });
    expect(await codeOf(service.register(ALICE, now, { name: 'same', imageLocation: URL_OK, tagSpecifications: [] }))).toBe('InvalidAMIName.Duplicate');
    repo.loseNextInsert = true;
    expect(await codeOf(service.register(ALICE, now, { name: 'other', imageLocation: URL_OK, tagSpecifications: [] }))).toBe('InvalidAMIName.Duplicate');
    await service.register(BOB, now, { name: 'same', imageLocation: URL_OK, tagSpecifications: [] });
    await service.idle();
    expect(repo.images.size).toBe(2);
  });

  it('a refused quota or tag leaves nothing behind', async () => {
    quotas.refuse = true;
    expect(await codeOf(service.register(ALICE, now, { name: 'quota-img', imageLocation: URL_OK, tagSpecifications: [] }))).toBe('ImageLimitExceeded');
    quotas.refuse = false;
    const bad = [{ resourceType: 'image', tags: [{ key: 'aws:x', value: '' }] }];
    expect(await codeOf(service.register(ALICE, now, { name: 'quota-img', imageLocation: URL_OK, tagSpecifications: bad }))).toBe('InvalidParameterValue');
    expect(repo.images.size).toBe(0);
  });
});

describe('DeregisterImage and access', () => {
  it('the owner deregisters: the image disappears and its unused blob is deleted', async () => {
    const id = await registered(ALICE, 'mine', { tags: [{ key: 'a', value: 'b' }] });
    const sha = repo.images.get(id)!.blobSha256!;
    await service.deregister(ALICE, id);
    expect(await ids(ALICE)).toEqual([]);
    expect(tags.tags.has(id)).toBe(false);
    expect(blobs.blobs.has(sha)).toBe(false);
    expect(await codeOf(service.deregister(ALICE, id))).toBe('InvalidAMIID.NotFound');
  });

  it('keeps the blob while an instance uses the image; collection deletes it afterwards', async () => {
    const id = await registered(ALICE, 'used');
    const sha = repo.images.get(id)!.blobSha256!;
    usage.running.add(id);
    await service.deregister(ALICE, id);
    expect(blobs.blobs.has(sha)).toBe(true);
    usage.running.delete(id);
    expect(await service.collectUnreferencedBlobs()).toEqual([sha]);
  });

  it('keeps a blob another registered image still uses', async () => {
    const a = await registered(ALICE, 'img-a', { bytes: Buffer.from('same bytes') });
    await registered(BOB, 'img-b', { bytes: Buffer.from('same bytes') });
    const sha = repo.images.get(a)!.blobSha256!;
    await service.deregister(ALICE, a);
    expect(blobs.blobs.has(sha)).toBe(true);
  });

  it('invisible → NotFound; visible but shared (public or granted) → AuthFailure; the admin may', async () => {
    const priv = await registered(ALICE, 'private');
    const pub = await registered(ALICE, 'public', { public: true });
    const granted = await registered(ALICE, 'granted');
    await service.modifyAttribute(ALICE, granted, share([BOB.id]));
    expect(await codeOf(service.deregister(BOB, priv))).toBe('InvalidAMIID.NotFound');
    expect(await codeOf(service.deregister(BOB, pub))).toBe('AuthFailure');
    expect(await codeOf(service.deregister(BOB, granted))).toBe('AuthFailure');
    expect(await codeOf(service.modifyAttribute(BOB, granted, share([CAROL.id])))).toBe('AuthFailure');
    expect(await codeOf(service.resetLaunchPermission(BOB, pub))).toBe('AuthFailure');
    expect(await codeOf(service.modifyAttribute(CAROL, priv, share([CAROL.id])))).toBe('InvalidAMIID.NotFound');
    await service.deregister(ADMIN, priv);
    expect(await ids(ALICE)).toEqual([pub, granted].sort());
  });

  it('malformed ids are InvalidAMIID.Malformed', async () => {
    expect(await codeOf(service.deregister(ALICE, 'emi-nope'))).toBe('InvalidAMIID.Malformed');
    expect(await codeOf(service.describe(ALICE, { imageIds: ['i-0123456789abcdef0'], owners: [], executableBy: [], filters: [] }))).toBe('InvalidAMIID.Malformed');
  });
});

describe('launch permissions', () => {
  it('grant, describe, launch and revoke', async () => {
    const id = await registered(ALICE, 'shared');
    expect(await codeOf(service.launchSpec({ accountId: BOB.id, isAdmin: false }, id))).toBe('InvalidAMIID.NotFound');
    await service.modifyAttribute(ALICE, id, share([BOB.id, CAROL.id]));
    expect(await service.describeAttribute(ALICE, id)).toMatchObject({ isOwner: true, permissions: [BOB.id, CAROL.id] });
    // a grantee sees it but not who else it is shared with
    expect(await service.describeAttribute(BOB, id)).toMatchObject({ isOwner: false, permissions: [] });
    const spec = await service.launchSpec({ accountId: BOB.id, isAdmin: false }, id);
    expect(spec.spec.root).toMatchObject({ imageId: id, format: 'raw' });
    expect(spec.spec.root.url).toContain('http://127.0.0.1:8773/');
    await service.modifyAttribute(ALICE, id, unshare([BOB.id]));
    expect(await codeOf(service.describeAttribute(BOB, id))).toBe('InvalidAMIID.NotFound');
    expect(await ids(CAROL)).toEqual([id]);
    await service.resetLaunchPermission(ALICE, id);
    expect(await ids(CAROL)).toEqual([]);
  });

  it('public and private again; a description change', async () => {
    const id = await registered(ALICE, 'pub', { public: true });
    expect(await ids(BOB)).toEqual([id]);
    await service.modifyAttribute(ALICE, id, { add: { accounts: [], all: false }, remove: { accounts: [], all: true }, description: 'now private' });
    expect(await ids(BOB)).toEqual([]);
    expect(repo.images.get(id)).toMatchObject({ isPublic: false, description: 'now private' });
  });

  it('refuses a user id that is not 12 digits, and a description over 255 characters', async () => {
    const id = await registered(ALICE, 'x-image');
    expect(await codeOf(service.modifyAttribute(ALICE, id, share(['bob'])))).toBe('InvalidAMIAttributeItemValue');
    expect(await codeOf(service.modifyAttribute(ALICE, id, { ...share([]), description: 'd'.repeat(256) }))).toBe('InvalidParameterValue');
  });

  it('launchSpec refuses a kernel image and an image not yet available', async () => {
    const k = await service.register(ALICE, now, { name: 'kern', imageType: 'kernel', imageLocation: 'http://images.test/none', tagSpecifications: [] });
    await service.idle();
    expect(await codeOf(service.launchSpec({ accountId: ALICE.id, isAdmin: false }, k.id))).toBe('InvalidParameterValue');
    const pending = await service.register(ALICE, now, { name: 'slow', imageLocation: 'http://images.test/none2', tagSpecifications: [] });
    expect(await codeOf(service.launchSpec({ accountId: ALICE.id, isAdmin: false }, pending.id))).toBe('InvalidParameterValue');
    await service.idle();
  });
});

describe('DescribeImages', () => {
  let mine: string, bobsPublic: string, bobsShared: string, bobsPrivate: string, amazon: string;
  beforeEach(async () => {
    mine = await registered(ALICE, 'mine', { tags: [{ key: 'team', value: 'a' }] });
    bobsPublic = await registered(BOB, 'bob-public', { public: true, tags: [{ key: 'team', value: 'b' }] });
    bobsShared = await registered(BOB, 'bob-shared');
    bobsPrivate = await registered(BOB, 'bob-private');
    amazon = await registered(ADMIN, 'tiny-linux', { public: true });
    await service.modifyAttribute(BOB, bobsShared, share([ALICE.id]));
  });

  it('shows the owner’s, public and granted images; the admin sees every one', async () => {
    expect(await ids(ALICE)).toEqual([mine, bobsPublic, bobsShared, amazon].sort());
    expect(await ids(ADMIN)).toEqual([mine, bobsPublic, bobsShared, bobsPrivate, amazon].sort());
  });

  it('an ImageId the caller cannot see is NotFound', async () => {
    expect(await codeOf(service.describe(ALICE, { imageIds: [mine, bobsPrivate], owners: [], executableBy: [], filters: [] }))).toBe('InvalidAMIID.NotFound');
    expect(await ids(ALICE, { imageIds: [bobsShared] })).toEqual([bobsShared]);
  });

  it('Owner: self, an account id, amazon (the admin’s public images, with the alias)', async () => {
    expect(await ids(ALICE, { owners: ['self'] })).toEqual([mine]);
    expect(await ids(ALICE, { owners: [BOB.id] })).toEqual([bobsPublic, bobsShared].sort());
    expect(await ids(ALICE, { owners: ['amazon'] })).toEqual([amazon]);
    expect(await ids(ALICE, { owners: ['aws-marketplace'] })).toEqual([]);
    const { items } = await service.describe(ALICE, { imageIds: [amazon, mine], owners: [], executableBy: [], filters: [] });
    expect(items.map((v) => v.ownerAlias)).toEqual(items.map((v) => (v.image.id === amazon ? 'amazon' : undefined)));
  });

  it('ExecutableBy: all (public), self (own or granted), another account (granted to it)', async () => {
    expect(await ids(ALICE, { executableBy: ['all'] })).toEqual([bobsPublic, amazon].sort());
    expect(await ids(ALICE, { executableBy: ['self'] })).toEqual([mine, bobsShared].sort());
    expect(await ids(BOB, { executableBy: [ALICE.id] })).toEqual([bobsShared]);
  });

  it('tags are the owner’s: others see none and tag filters match none for them', async () => {
    const tagsOf = async (who: Caller) => new Map((await service.describe(who, { imageIds: [], owners: [], executableBy: [], filters: [] })).items.map((v) => [v.image.id, v.tags]));
    expect((await tagsOf(ALICE)).get(bobsPublic)).toEqual([]);
    expect((await tagsOf(BOB)).get(bobsPublic)).toEqual([{ key: 'team', value: 'b' }]);
    expect(await ids(ALICE, { filters: [{ name: 'tag-key', values: ['team'] }] })).toEqual([mine]);
    expect(
      await ids(ALICE, {
        filters: [
          { name: 'is-public', values: ['true'] },
          { name: 'owner-alias', values: ['amazon'] },
        ],
      }),
    ).toEqual([amazon]);
  });

  it('pages by id', async () => {
    for (const n of ['more-1', 'more-2', 'more-3']) await registered(ALICE, n);
    const q = { imageIds: [], owners: [], executableBy: [], filters: [] };
    const all = (await service.describe(ALICE, q)).items.map((v) => v.image.id);
    expect(all).toHaveLength(7);
    const p1 = await service.describe(ALICE, { ...q, maxResults: 5 });
    expect(p1.nextToken).toBeDefined();
    const p2 = await service.describe(ALICE, { ...q, maxResults: 5, nextToken: p1.nextToken });
    expect(p2.nextToken).toBeUndefined();
    expect([...p1.items, ...p2.items].map((v) => v.image.id)).toEqual(all);
  });
});

describe('DryRun (through the handlers)', () => {
  it('answers DryRunOperation after validation and writes nothing', async () => {
    const id = await registered(ALICE, 'dry');
    fetcher.bodies.set(URL_OK, Buffer.from('x'));
    expect(await codeOf(handlers.register(ctx(ALICE, { Name: 'dry-new', ImageLocation: URL_OK, DryRun: 'true' })))).toBe('DryRunOperation');
    expect(await codeOf(handlers.deregister(ctx(ALICE, { ImageId: id, DryRun: 'true' })))).toBe('DryRunOperation');
    expect(await codeOf(handlers.modifyAttribute(ctx(ALICE, { ImageId: id, 'LaunchPermission.Add.1.Group': 'all', DryRun: 'true' })))).toBe('DryRunOperation');
    expect(await codeOf(handlers.describe(ctx(ALICE, { DryRun: 'true' })))).toBe('DryRunOperation');
    expect([...repo.images.values()]).toEqual([expect.objectContaining({ id, isPublic: false, deregisteredAt: null })]);
  });

  it('validates the parameters before DryRun', async () => {
    expect(await codeOf(handlers.deregister(ctx(ALICE, { ImageId: 'emi-bad', DryRun: 'true' })))).toBe('InvalidAMIID.Malformed');
  });
});

describe('operator import', () => {
  const input = (bytes: string, extra: object = {}) => ({
    name: 'tiny',
    imageType: 'machine' as const,
    architecture: 'x86_64' as const,
    virtualizationType: 'hvm' as const,
    isPublic: true,
    location: 'import:tiny.img',
    source: Readable.from([Buffer.from(bytes)]),
    replace: false,
    ...extra,
  });

  it('is idempotent by name and content; other content needs replace, which deregisters the old image', async () => {
    const first = await service.importImage(ADMIN, input('v1'));
    expect(first).toMatchObject({ existed: false, image: { state: 'available', isPublic: true, imageLocation: 'import:tiny.img' } });
    expect(quotas.asked).toEqual([]);
    expect((await service.importImage(ADMIN, input('v1'))).image.id).toBe(first.image.id);
    await expect(service.importImage(ADMIN, input('v2'))).rejects.toThrow(/already exists/);
    const second = await service.importImage(ADMIN, input('v2', { replace: true }));
    expect(second.image.id).not.toBe(first.image.id);
    expect(repo.images.get(first.image.id)!.deregisteredAt).toEqual(now);
    expect((await service.listAll()).map((i) => i.id)).toEqual([second.image.id]);
    expect(blobs.blobs.has(first.image.blobSha256!)).toBe(false);
  });
});
