import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ImageSpec, type ImageBlob } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { applyFilters, Ec2Error, idPrefixOf, isValidId, newId, paginate, type Filter, type FilterSpec, type PermissionChange, type Tag, type TagSpecification } from '@koala/ec2-query';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import type { Logger } from '@koala/logging';
import type { Readable } from 'node:stream';
import { decryptSecret, encryptSecret } from '@koala/aws-auth';
import { MASTER_KEY } from '../auth/master-key.js';
import { DataSource, In, IsNull, QueryFailedError, type EntityManager } from 'typeorm';
import { AccountEntity } from '../accounts/account.entity.js';
import { TaggableResources, entityOwners, type Caller } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import type { QuotaRequest } from '../quotas/quota-rules.js';
import { TagsService } from '../tags/tags.service.js';
import { BLOB_STORE, BlobTooLargeError, type BlobStore, type PutResult } from './blob-store.js';
import { BlobUrlSigner } from './blob-url-signer.js';
import { displayLocation, FetchError, IMAGE_FETCHER, isFetchableUrl, LOCATION_NOT_FETCHED, type ImageFetcher } from './image-fetcher.js';
import { detectImageFormat, FORMAT_PROBE_BYTES } from './image-format.js';
import type { ImageLaunchPort } from './image-launch.port.js';
import { IMAGE_USAGE, type ImageUsage } from './image-usage.port.js';
import { ImageEntity, ImageLaunchPermissionEntity, type Architecture, type ImageType, type VirtualizationType } from './image.entity.js';
import { CLC_ROLE, runsBackground, type ClcRole } from '../cluster/clc-role.js';

export const IMAGE_RESOURCE_TYPE = 'image';
export const ARCHITECTURES = ['x86_64', 'i386', 'arm64'] as const;
export const VIRTUALIZATION_TYPES = ['hvm', 'paravirtual'] as const;
export const IMAGE_TYPES = ['machine', 'kernel', 'ramdisk'] as const;
export const DEFAULT_ROOT_DEVICE_NAME = '/dev/sda1';
/** Token: the signer of image-store URLs (built from the master key). */
export const BLOB_URL_SIGNER = Symbol('BLOB_URL_SIGNER');

const PREFIX: Record<ImageType, 'emi' | 'eki' | 'eri'> = { machine: 'emi', kernel: 'eki', ramdisk: 'eri' };
const IMAGE_PREFIXES = ['emi', 'eki', 'eri', 'ami', 'aki', 'ari'];

export type ImagesConfig = Pick<KoalaConfig, 'publicEndpoint' | 'imageMaxBytes' | 'imageFetchTimeoutMs' | 'imageUrlTtlSeconds'>;

export interface ImageView {
  image: ImageEntity;
  tags: Tag[];
  /** `amazon` for the admin's public images (see DescribeImages Owner=amazon). */
  ownerAlias?: string;
}

export interface RegisterImageInput {
  name: string;
  description?: string;
  imageLocation: string;
  imageType?: ImageType;
  architecture?: Architecture;
  virtualizationType?: VirtualizationType;
  rootDeviceName?: string;
  kernelId?: string;
  ramdiskId?: string;
  tagSpecifications: readonly TagSpecification[];
}

export interface DescribeImagesQuery {
  imageIds: readonly string[];
  owners: readonly string[];
  executableBy: readonly string[];
  filters: readonly Filter[];
  maxResults?: number;
  nextToken?: string;
}

export interface ImportImageInput {
  name: string;
  description?: string;
  imageType: ImageType;
  architecture: Architecture;
  virtualizationType: VirtualizationType;
  rootDeviceName?: string;
  kernelId?: string;
  ramdiskId?: string;
  kernelArgs?: string;
  isPublic: boolean;
  /** Shown as imageLocation (`import:<file name>`). */
  location: string;
  /**
   * The bytes (always read in full: the digest decides whether the image already exists), or a
   * raw machine disk file, stored as a compact qcow2 (its holes are never read).
   */
  source: Readable | AsyncIterable<Buffer> | { rawDiskPath: string };
  replace: boolean;
  onProgress?: (bytes: number) => void;
}

/** Operator-facing import failure (the CLI prints the message). */
export class ImageImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageImportError';
  }
}

type Item = ImageView & { isPublic: boolean };
const IMAGE_FILTERS: FilterSpec<Item> = {
  architecture: (i) => i.image.architecture,
  'image-id': (i) => i.image.id,
  'image-type': (i) => i.image.imageType,
  'is-public': (i) => i.isPublic,
  'kernel-id': (i) => i.image.kernelId,
  'ramdisk-id': (i) => i.image.ramdiskId,
  name: (i) => i.image.name,
  'owner-id': (i) => i.image.accountId,
  'owner-alias': (i) => i.ownerAlias,
  state: (i) => i.image.state,
  'state-reason-code': (i) => i.image.stateReasonCode,
  'state-reason-message': (i) => i.image.stateReasonMessage,
  'virtualization-type': (i) => i.image.virtualizationType,
  'root-device-type': (i) => i.image.rootDeviceType,
  'root-device-name': (i) => i.image.rootDeviceName,
  description: (i) => i.image.description,
  'image-location': (i) => i.image.imageLocation,
  hypervisor: () => HYPERVISOR,
  'creation-date': (i) => i.image.createdAt,
};
export const HYPERVISOR = 'kvm';

/** AWS AMI name rules: 3-128 characters of letters, digits and ( ) [ ] space . / - ' @ _ */
export function validateImageName(name: string): void {
  if (!/^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/.test(name)) {
    throw new Ec2Error(
      'InvalidAMIName.Malformed',
      `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_': ${JSON.stringify(name)}`,
    );
  }
}
function validateDescription(d: string | undefined): void {
  if (d !== undefined && d.length > 255) throw Ec2Error.invalidParameterValue('Description', undefined, 'Description must not exceed 255 characters.');
}
function validateRootDeviceName(n: string): void {
  if (!/^\/dev\/[a-z][a-z0-9]{1,15}$/.test(n)) throw Ec2Error.invalidParameterValue('RootDeviceName', n, 'Expected a device name such as /dev/sda1.');
}
/** An image id as a parameter: `emi-`/`eki-`/`eri-` (and `ami-`/`aki-`/`ari-`, which simply never exist here). */
export function checkImageId(id: string): string {
  const p = idPrefixOf(id) ?? (/^(aki|ari)-/.test(id) ? id.slice(0, 3) : undefined);
  if (!p || !IMAGE_PREFIXES.includes(p) || !isValidId(p, id)) throw Ec2Error.malformed('InvalidAMIID.Malformed', id);
  return id;
}
function duplicateName(name: string, id: string): Ec2Error {
  return Ec2Error.duplicate('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${id}`);
}
function notAuthorized(id: string): Ec2Error {
  return new Ec2Error('AuthFailure', `Not authorized for image:${id}`);
}
function isUniqueViolation(e: unknown): boolean {
  return e instanceof QueryFailedError && (e as unknown as { code?: string }).code === '23505';
}
async function lockDigest(em: EntityManager, sha256: string): Promise<void> {
  await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`koala-image-blob:${sha256}`]);
}

/**
 * Images: RegisterImage (asynchronous fetch into the blob store), DescribeImages, DeregisterImage,
 * image attributes and launch permissions, operator import, and the launch spec for instances.
 *
 * Visibility: the owner, everyone for a public image, accounts with a launch permission; the
 * admin sees every image. Deregistered images are invisible (their rows stay for instances).
 */
@Injectable()
export class ImagesService implements ImageLaunchPort, OnApplicationBootstrap, OnModuleDestroy {
  private readonly jobs = new Map<string, { ac: AbortController; done: Promise<void> }>();
  private closing = false;

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(IMAGE_FETCHER) private readonly fetcher: ImageFetcher,
    @Inject(BLOB_URL_SIGNER) private readonly signer: BlobUrlSigner,
    @Inject(TagsService) private readonly tags: TagsService,
    @Inject(IMAGE_USAGE) private readonly usage: ImageUsage,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(KOALA_CONFIG) private readonly config: ImagesConfig,
    @Inject(TaggableResources) registry: TaggableResources,
    @Inject(MASTER_KEY) private readonly masterKey: string,
    @Optional() @Inject(LOGGER) private readonly log?: Logger,
    // Absent only for the operator's `koala image import` (not subject to quotas).
    @Optional() @Inject(QuotaService) private readonly quotas?: QuotaService,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {
    for (const prefix of ['emi', 'eki', 'eri']) {
      registry.register({
        prefix,
        resourceType: IMAGE_RESOURCE_TYPE,
        notFoundCode: 'InvalidAMIID.NotFound',
        owners: entityOwners(ImageEntity, { where: { deregisteredAt: IsNull() } }),
      });
    }
  }

  /** Resumes fetches that a stopped CLC left `pending`. */
  async onApplicationBootstrap(): Promise<void> {
    if (!runsBackground(this.role)) return; // worker 0 resumes them
    const pending = await this.ds.getRepository(ImageEntity).find({ where: { state: 'pending', deregisteredAt: IsNull() } });
    for (const img of pending) {
      const url = img.fetchLocation ? decryptSecret(img.fetchLocation, this.masterKey) : img.imageLocation;
      if (isFetchableUrl(url)) this.startFetch(img.id, url, img.imageType);
    }
  }

  /** Stops running fetches (they stay `pending` and resume at the next start). */
  async onModuleDestroy(): Promise<void> {
    this.closing = true;
    for (const j of this.jobs.values()) j.ac.abort(new Error('shutting down'));
    await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
  }

  /** Resolves when no fetch is running (tests). */
  async idle(): Promise<void> {
    while (this.jobs.size) await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
  }

  // ---- RegisterImage --------------------------------------------------------------------

  /** Validates, writes a `pending` image and starts fetching its ImageLocation; returns at once. */
  async register(caller: Caller, now: Date, input: RegisterImageInput): Promise<ImageEntity> {
    validateImageName(input.name);
    validateDescription(input.description);
    if (!isFetchableUrl(input.imageLocation)) {
      throw Ec2Error.invalidParameterValue('ImageLocation', undefined, 'Only http and https image locations are supported.');
    }
    const shown = displayLocation(input.imageLocation);
    const imageType = input.imageType ?? 'machine';
    if (imageType !== 'machine' && (input.kernelId || input.ramdiskId)) {
      throw Ec2Error.invalidParameterCombination('KernelId and RamdiskId apply to machine images only.');
    }
    const virtualizationType = input.virtualizationType ?? (input.kernelId ? 'paravirtual' : 'hvm');
    if (virtualizationType === 'paravirtual' && imageType === 'machine' && !input.kernelId) {
      throw Ec2Error.missingParameter('KernelId');
    }
    if (virtualizationType === 'hvm' && (input.kernelId || input.ramdiskId)) {
      throw Ec2Error.invalidParameterCombination('KernelId and RamdiskId require VirtualizationType paravirtual.');
    }
    const rootDeviceName = input.rootDeviceName ?? DEFAULT_ROOT_DEVICE_NAME;
    validateRootDeviceName(rootDeviceName);
    this.tags.checkTagSpecifications(IMAGE_RESOURCE_TYPE, input.tagSpecifications);
    await this.checkBootImages(caller, input.kernelId, input.ramdiskId);
    const image = await this.insert(caller, {
      id: newId(PREFIX[imageType]),
      accountId: caller.id,
      name: input.name,
      description: input.description ?? null,
      state: 'pending',
      imageType,
      architecture: input.architecture ?? 'x86_64',
      virtualizationType,
      rootDeviceName,
      kernelId: input.kernelId ?? null,
      ramdiskId: input.ramdiskId ?? null,
      // Shown without credentials and query; the full URL is kept sealed until the fetch ends.
      imageLocation: shown,
      fetchLocation: shown === input.imageLocation ? null : encryptSecret(input.imageLocation, this.masterKey),
      createdAt: now,
    }, input.tagSpecifications, undefined, { kind: 'image', fetch: true });
    this.startFetch(image.id, input.imageLocation, imageType);
    return image;
  }

  /** KernelId/RamdiskId: exist, visible and launchable by the caller, of the right kind, not failed. */
  private async checkBootImages(caller: Caller, kernelId?: string, ramdiskId?: string): Promise<void> {
    for (const [id, kind, param] of [
      [kernelId, 'kernel', 'KernelId'],
      [ramdiskId, 'ramdisk', 'RamdiskId'],
    ] as const) {
      if (!id) continue;
      checkImageId(id);
      const img = await this.findVisible(caller, id);
      if (img.imageType !== kind) throw Ec2Error.invalidParameterValue(param, id, `The image is not a ${kind} image (image type ${img.imageType}).`);
      if (img.state === 'failed') throw Ec2Error.invalidParameterValue(param, id, `The ${kind} image failed to register.`);
    }
  }

  private async insert(caller: Caller, row: Partial<ImageEntity>, specs: readonly TagSpecification[], em?: EntityManager, quota?: QuotaRequest): Promise<ImageEntity> {
    const work = async (em: EntityManager) => {
      if (quota) await this.quotas?.enforce(em, caller, quota);
      const repo = em.getRepository(ImageEntity);
      const existing = await repo.findOne({ where: { accountId: row.accountId!, name: row.name!, deregisteredAt: IsNull() } });
      if (existing) throw duplicateName(row.name!, existing.id);
      const image = repo.create({ rootDeviceType: 'instance-store', isPublic: false, deregisteredAt: null, kernelArgs: null, ...row });
      await repo.insert(image);
      await this.tags.applyTagSpecifications(caller, IMAGE_RESOURCE_TYPE, image.id, specs, em);
      return image;
    };
    try {
      return em ? await work(em) : await this.ds.transaction(work);
    } catch (e) {
      if (isUniqueViolation(e)) throw duplicateName(row.name!, '(concurrent registration)');
      throw e;
    }
  }

  private startFetch(id: string, url: string, imageType: ImageType): void {
    const ac = new AbortController();
    const timer = setTimeout(
      () => ac.abort(new FetchError('Client.ImageFetchTimeout', `fetching the image took longer than ${this.config.imageFetchTimeoutMs} ms`)),
      this.config.imageFetchTimeoutMs,
    );
    timer.unref?.();
    const done = this.fetchAndStore(id, url, imageType, ac.signal).finally(() => {
      clearTimeout(timer);
      this.jobs.delete(id);
    });
    this.jobs.set(id, { ac, done });
  }

  private async fetchAndStore(id: string, url: string, imageType: ImageType, signal: AbortSignal): Promise<void> {
    try {
      const { body, contentLength } = await this.fetcher.open(url, signal);
      if (contentLength !== undefined && contentLength > this.config.imageMaxBytes) {
        body.destroy();
        throw new BlobTooLargeError(this.config.imageMaxBytes);
      }
      const fetched = await this.blobs.put(body, { maxBytes: this.config.imageMaxBytes });
      const put = imageType === 'machine' ? await this.compactIfSparse(fetched) : fetched;
      const ok = await this.complete(id, put.sha256, put.size, imageType);
      const unused = [...(ok ? [] : [put.sha256]), ...(put.sha256 !== fetched.sha256 ? [fetched.sha256] : [])];
      if (unused.length) await this.collectUnreferencedBlobs(unused);
      this.log?.info({ imageId: id, sha256: put.sha256, size: put.size, fetchedSize: fetched.size }, 'image fetched');
    } catch (e) {
      if (this.closing) return; // stays pending; resumed at the next start
      const reason = signal.aborted && signal.reason instanceof FetchError ? signal.reason : e;
      const { code, message, detail } = failureReason(reason);
      // The tenant sees a generic reason; what happened (addresses, statuses, errors) is logged.
      this.log?.warn({ imageId: id, location: displayLocation(url), code, err: detail }, 'image fetch failed');
      await this.ds
        .getRepository(ImageEntity)
        .update({ id, state: 'pending', deregisteredAt: IsNull() }, { state: 'failed', stateReasonCode: code, stateReasonMessage: message, fetchLocation: null })
        .catch(() => undefined);
    }
  }

  /**
   * A fetched raw disk that is at least half zeros (the store keeps zero blocks as holes) is
   * stored again as a compact qcow2, so NCs download only its data; others are kept as fetched
   * (a qcow2 of a dense disk saves nothing). Content decides, so the same bytes give the same blob.
   */
  private async compactIfSparse(put: PutResult): Promise<PutResult> {
    if (put.size === 0 || detectImageFormat(await this.blobs.head(put.sha256, FORMAT_PROBE_BYTES)).format !== 'raw') return put;
    const allocated = await this.blobs.allocated(put.sha256);
    if (allocated === undefined) throw new FetchError('Server.InternalError', 'the stored image vanished; register it again');
    if (allocated * 2 > put.size) return put;
    try {
      return await this.blobs.putRawDisk(this.blobs.pathOf(put.sha256), { maxBytes: this.config.imageMaxBytes });
    } catch (e) {
      await this.collectUnreferencedBlobs([put.sha256]);
      throw e;
    }
  }

  /** pending → available with its blob; false when the image was deregistered meanwhile. */
  private async complete(id: string, sha256: string, size: number, imageType: ImageType): Promise<boolean> {
    const head = await this.blobs.head(sha256, FORMAT_PROBE_BYTES);
    const info = detectImageFormat(head);
    if (info.unsafe) throw new FetchError('Client.InvalidImage', `refused: ${info.unsafe}`);
    if (imageType !== 'machine' && info.format !== 'raw') throw new FetchError('Client.InvalidImage', `a ${imageType} image must be a raw file, got ${info.format}`);
    return this.ds.transaction(async (em) => {
      await lockDigest(em, sha256);
      if ((await this.blobs.size(sha256)) === undefined) throw new FetchError('Server.InternalError', 'the stored image vanished; register it again');
      const r = await em
        .getRepository(ImageEntity)
        .update({ id, state: 'pending', deregisteredAt: IsNull() }, { state: 'available', blobSha256: sha256, sizeBytes: size, format: info.format, stateReasonCode: null, stateReasonMessage: null, fetchLocation: null });
      return (r.affected ?? 0) > 0;
    });
  }

  // ---- DescribeImages -------------------------------------------------------------------

  /**
   * Visible images (see the class comment), sorted by id, paginated by id.
   * - `Owner.N`: `self`, account ids, and `amazon` = the admin account's public images (the
   *   cloud's own images such as tiny-linux, shown with `imageOwnerAlias` amazon);
   *   `aws-marketplace` (and any other alias) matches nothing.
   * - `ExecutableBy.N`: `all` = public; `self` (or the caller's id) = images the caller owns or
   *   was granted a launch permission on (not public ones: ask `all` for those); another account
   *   id = images shared with that account by an explicit launch permission.
   * Values within Owner (or ExecutableBy) are ORed; Owner, ExecutableBy, ImageId and filters ANDed.
   */
  async describe(caller: Caller, q: DescribeImagesQuery): Promise<{ items: ImageView[]; nextToken?: string }> {
    for (const id of q.imageIds) checkImageId(id);
    const rows = await this.ds.getRepository(ImageEntity).find({ where: { deregisteredAt: IsNull() }, order: { id: 'ASC' } });
    const perms = await this.permissionsOf(rows.map((r) => r.id));
    const adminId = rows.length ? await this.adminAccountId() : undefined;
    const visible = rows.filter((r) => caller.isAdmin || r.accountId === caller.id || r.isPublic || perms.get(r.id)?.has(caller.id));
    for (const id of q.imageIds) if (!visible.some((r) => r.id === id)) throw Ec2Error.notFound('InvalidAMIID.NotFound', id);
    const ownerIds = q.owners.map((o) => (o === 'self' ? caller.id : o));
    const selected = visible.filter((r) => {
      if (q.imageIds.length && !q.imageIds.includes(r.id)) return false;
      if (ownerIds.length && !ownerIds.some((o) => (o === 'amazon' ? r.accountId === adminId && r.isPublic : r.accountId === o))) return false;
      if (q.executableBy.length) {
        const p = perms.get(r.id);
        const ok = q.executableBy.some((x) => {
          if (x === 'all') return r.isPublic;
          if (x === 'self' || x === caller.id) return r.accountId === caller.id || !!p?.has(caller.id);
          return !!p?.has(x);
        });
        if (!ok) return false;
      }
      return true;
    });
    // Tags are the owner's notes: accounts the image is shared with (or public to) see none, and
    // `tag:` filters match nothing of them for those accounts.
    const tags = await this.tags.tagsOf(selected.filter((r) => caller.isAdmin || r.accountId === caller.id).map((r) => r.id));
    const items: Item[] = selected.map((image) => ({
      image,
      tags: tags.get(image.id) ?? [],
      isPublic: image.isPublic,
      ownerAlias: image.accountId === adminId && image.isPublic ? 'amazon' : undefined,
    }));
    const matching = applyFilters(items, q.filters, IMAGE_FILTERS, (i) => i.tags);
    const { page, nextToken } = paginate(matching, { maxResults: q.maxResults, nextToken: q.nextToken, keyOf: (i) => i.image.id, scope: 'DescribeImages' });
    return { items: page.map(({ image, tags, ownerAlias }) => ({ image, tags, ownerAlias })), nextToken };
  }

  private async permissionsOf(imageIds: readonly string[], em: EntityManager = this.ds.manager): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    if (!imageIds.length) return out;
    const rows = await em.getRepository(ImageLaunchPermissionEntity).find({ where: { imageId: In([...imageIds]) } });
    for (const r of rows) {
      if (!out.has(r.imageId)) out.set(r.imageId, new Set());
      out.get(r.imageId)!.add(r.accountId);
    }
    return out;
  }

  private async adminAccountId(): Promise<string | undefined> {
    const a = await this.ds.getRepository(AccountEntity).findOne({ where: { isAdmin: true }, order: { createdAt: 'ASC' } });
    return a?.id;
  }

  /** An image the caller may see (and launch): NotFound otherwise, as if it did not exist. */
  private async findVisible(caller: Caller, id: string, em: EntityManager = this.ds.manager): Promise<ImageEntity> {
    checkImageId(id);
    const img = await em.getRepository(ImageEntity).findOne({ where: { id, deregisteredAt: IsNull() } });
    if (!img) throw Ec2Error.notFound('InvalidAMIID.NotFound', id);
    if (caller.isAdmin || img.accountId === caller.id || img.isPublic) return img;
    if (await em.getRepository(ImageLaunchPermissionEntity).exists({ where: { imageId: id, accountId: caller.id } })) return img;
    throw Ec2Error.notFound('InvalidAMIID.NotFound', id);
  }

  /** An image the caller owns (the admin: any); visible but foreign → AuthFailure. */
  private async findOwned(caller: Caller, id: string, em: EntityManager = this.ds.manager): Promise<ImageEntity> {
    const img = await this.findVisible(caller, id, em);
    if (!caller.isAdmin && img.accountId !== caller.id) throw notAuthorized(id);
    return img;
  }

  // ---- DeregisterImage ------------------------------------------------------------------

  async deregister(caller: Caller, id: string): Promise<void> {
    const img = await this.ds.transaction(async (em) => {
      const img = await this.findOwned(caller, id, em);
      await em.getRepository(ImageEntity).update({ id }, { deregisteredAt: this.clock.now() });
      await em.getRepository(ImageLaunchPermissionEntity).delete({ imageId: id });
      await this.tags.deleteAllFor(id, em);
      return img;
    });
    const job = this.jobs.get(id);
    if (job) {
      job.ac.abort(new FetchError('Client.Deregistered', 'deregistered while fetching'));
      await job.done.catch(() => undefined);
    }
    if (img.blobSha256) await this.collectUnreferencedBlobs([img.blobSha256]);
  }

  /**
   * Deletes the blobs (of `digests`, or every blob) that no registered image references and that
   * no non-terminated instance needs (`ImageUsage`, also through a machine image's kernel and
   * ramdisk). Returns the digests deleted.
   */
  async collectUnreferencedBlobs(digests?: readonly string[]): Promise<string[]> {
    const candidates = digests ? [...new Set(digests)] : await this.blobs.list();
    const deleted: string[] = [];
    for (const sha256 of candidates) {
      const gone = await this.ds.transaction(async (em) => {
        await lockDigest(em, sha256);
        const repo = em.getRepository(ImageEntity);
        const users = await repo.find({ where: { blobSha256: sha256 } });
        if (users.some((u) => u.deregisteredAt === null)) return false;
        if (users.length) {
          const ids = users.map((u) => u.id);
          const referencing = await repo.find({ where: [{ kernelId: In(ids) }, { ramdiskId: In(ids) }], select: { id: true } });
          const inUse = await this.usage.imagesInUse([...ids, ...referencing.map((r) => r.id)], em);
          if (inUse.size) return false;
        }
        return this.blobs.delete(sha256);
      });
      if (gone) deleted.push(sha256);
    }
    return deleted;
  }

  // ---- attributes -----------------------------------------------------------------------

  async describeAttribute(caller: Caller, id: string): Promise<{ image: ImageEntity; isOwner: boolean; permissions: string[] }> {
    const image = await this.findVisible(caller, id);
    const isOwner = caller.isAdmin || image.accountId === caller.id;
    const permissions = isOwner ? [...((await this.permissionsOf([id])).get(id) ?? [])].sort() : [];
    return { image, isOwner, permissions };
  }

  /** ModifyImageAttribute: launch permission changes and/or a new description (owner only). */
  async modifyAttribute(
    caller: Caller,
    id: string,
    change: PermissionChange & { description?: string },
  ): Promise<void> {
    for (const u of [...change.add.accounts, ...change.remove.accounts]) {
      if (!/^\d{12}$/.test(u)) throw new Ec2Error('InvalidAMIAttributeItemValue', `Invalid attribute item value "${u}" for userId item type.`);
    }
    validateDescription(change.description);
    await this.ds.transaction(async (em) => {
      const img = await this.findOwned(caller, id, em);
      const perms = em.getRepository(ImageLaunchPermissionEntity);
      if (change.add.accounts.length) {
        await em.createQueryBuilder().insert().into(ImageLaunchPermissionEntity).values(change.add.accounts.map((accountId) => ({ imageId: id, accountId }))).orIgnore().execute();
      }
      if (change.remove.accounts.length) await perms.delete({ imageId: id, accountId: In(change.remove.accounts) });
      const update: Partial<ImageEntity> = {};
      if (change.add.all) update.isPublic = true;
      if (change.remove.all) update.isPublic = false;
      if (change.description !== undefined) update.description = change.description;
      if (Object.keys(update).length) await em.getRepository(ImageEntity).update({ id: img.id }, update);
    });
  }

  /** ResetImageAttribute launchPermission: private, no shares. */
  async resetLaunchPermission(caller: Caller, id: string): Promise<void> {
    await this.ds.transaction(async (em) => {
      await this.findOwned(caller, id, em);
      await em.getRepository(ImageLaunchPermissionEntity).delete({ imageId: id });
      await em.getRepository(ImageEntity).update({ id }, { isPublic: false });
    });
  }

  // ---- launch (ImageLaunchPort) ---------------------------------------------------------

  async launchSpec(caller: { accountId: string; isAdmin: boolean }, imageId: string) {
    const who = { id: caller.accountId, isAdmin: caller.isAdmin };
    const img = await this.findVisible(who, imageId);
    if (img.imageType !== 'machine') throw Ec2Error.invalidParameterValue('ImageId', imageId, `A ${img.imageType} image cannot be launched.`);
    const root = this.blobOf(img);
    let spec: ImageSpec;
    if (img.virtualizationType === 'hvm') spec = { virtualizationType: 'hvm', root };
    else {
      const boot = async (bootId: string | null, kind: ImageType) => {
        if (!bootId) return undefined;
        const b = await this.ds.getRepository(ImageEntity).findOne({ where: { id: bootId, deregisteredAt: IsNull() } });
        if (!b || b.imageType !== kind) throw Ec2Error.invalidParameterValue('ImageId', imageId, `The ${kind} image ${bootId} of this image is no longer registered.`);
        return this.blobOf(b);
      };
      const kernel = await boot(img.kernelId, 'kernel');
      if (!kernel) throw Ec2Error.invalidParameterValue('ImageId', imageId, 'The paravirtual image has no kernel.');
      spec = { virtualizationType: 'paravirtual', root, kernel, ramdisk: await boot(img.ramdiskId, 'ramdisk'), kernelArgs: img.kernelArgs ?? undefined };
    }
    return { spec: ImageSpec.parse(spec), architecture: img.architecture, rootDeviceName: img.rootDeviceName };
  }

  private blobOf(img: ImageEntity): ImageBlob {
    if (img.state !== 'available' || !img.blobSha256) {
      throw Ec2Error.invalidParameterValue('ImageId', img.id, `The image is not available (state: ${img.state}).`);
    }
    const expires = Math.floor(this.clock.now().getTime() / 1000) + this.config.imageUrlTtlSeconds;
    return {
      imageId: img.id,
      sha256: img.blobSha256,
      sizeBytes: img.sizeBytes ?? 0,
      format: img.format ?? 'raw',
      url: this.signer.url(this.config.publicEndpoint, img.blobSha256, expires),
    };
  }

  // ---- operator import ------------------------------------------------------------------

  /**
   * Stores `source` and registers it `available` for `owner`. Idempotent by name: the same name
   * with the same bytes (and kernel/ramdisk) answers the existing image; different bytes are an
   * ImageImportError unless `replace` (the old image is deregistered).
   */
  async importImage(owner: Caller, input: ImportImageInput): Promise<{ image: ImageEntity; existed: boolean }> {
    validateImageName(input.name);
    validateDescription(input.description);
    const rootDeviceName = input.rootDeviceName ?? DEFAULT_ROOT_DEVICE_NAME;
    validateRootDeviceName(rootDeviceName);
    if (input.virtualizationType === 'paravirtual' && input.imageType === 'machine' && !input.kernelId) throw new ImageImportError('a paravirtual image needs a kernel');
    const opts = { maxBytes: this.config.imageMaxBytes, onProgress: input.onProgress };
    let put: PutResult;
    if ('rawDiskPath' in input.source) {
      if (input.imageType !== 'machine') throw new ImageImportError(`${input.location}: only a machine image is converted`);
      put = await this.blobs.putRawDisk(input.source.rawDiskPath, opts).catch((e: Error) => {
        throw e.name === 'RawConversionError' ? new ImageImportError(`${input.location}: ${e.message}`) : e;
      });
    } else put = await this.blobs.put(input.source, opts);
    const info = detectImageFormat(await this.blobs.head(put.sha256, FORMAT_PROBE_BYTES));
    const refuse = info.unsafe ?? (input.imageType !== 'machine' && info.format !== 'raw' ? `a ${input.imageType} must be a raw file` : undefined);
    if (refuse) {
      await this.collectUnreferencedBlobs([put.sha256]);
      throw new ImageImportError(`${input.location}: ${refuse}`);
    }
    let replaced: ImageEntity | undefined;
    const result = await this.ds.transaction(async (em) => {
      await lockDigest(em, put.sha256);
      await em.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`koala-image-name:${owner.id}:${input.name}`]);
      if ((await this.blobs.size(put.sha256)) === undefined) throw new ImageImportError('the stored image vanished (deleted concurrently): import again');
      const repo = em.getRepository(ImageEntity);
      const existing = await repo.findOne({ where: { accountId: owner.id, name: input.name, deregisteredAt: IsNull() } });
      if (existing) {
        const same =
          existing.blobSha256 === put.sha256 &&
          existing.imageType === input.imageType &&
          existing.virtualizationType === input.virtualizationType &&
          (existing.kernelId ?? undefined) === input.kernelId &&
          (existing.ramdiskId ?? undefined) === input.ramdiskId &&
          (existing.kernelArgs ?? undefined) === (input.kernelArgs || undefined);
        if (same) {
          if (input.isPublic && !existing.isPublic) await repo.update({ id: existing.id }, { isPublic: true });
          return { image: { ...existing, isPublic: existing.isPublic || input.isPublic }, existed: true };
        }
        if (!input.replace) {
          throw new ImageImportError(`an image named "${input.name}" already exists (${existing.id}) with other content: use --replace to replace it`);
        }
        await repo.update({ id: existing.id }, { deregisteredAt: this.clock.now() });
        await em.getRepository(ImageLaunchPermissionEntity).delete({ imageId: existing.id });
        await this.tags.deleteAllFor(existing.id, em);
        replaced = existing;
      }
      const image = await this.insert(
        owner,
        {
          id: newId(PREFIX[input.imageType]),
          accountId: owner.id,
          name: input.name,
          description: input.description ?? null,
          state: 'available',
          imageType: input.imageType,
          architecture: input.architecture,
          virtualizationType: input.virtualizationType,
          rootDeviceName,
          kernelId: input.kernelId ?? null,
          ramdiskId: input.ramdiskId ?? null,
          kernelArgs: input.kernelArgs || null,
          blobSha256: put.sha256,
          sizeBytes: put.size,
          format: info.format,
          isPublic: input.isPublic,
          imageLocation: input.location,
          createdAt: this.clock.now(),
        },
        [],
        em,
      );
      return { image, existed: false };
    });
    if (replaced?.blobSha256) await this.collectUnreferencedBlobs([replaced.blobSha256]);
    return result;
  }

  /** Registered images of every account (operator listing), newest first. */
  async listAll(): Promise<ImageEntity[]> {
    return this.ds.getRepository(ImageEntity).find({ where: { deregisteredAt: IsNull() }, order: { createdAt: 'DESC', id: 'ASC' } });
  }
}

/** Network errors while reading a response body: the location's fault, told generically. */
const BODY_NETWORK_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE', 'HPE_INVALID_CHUNK_SIZE']);

function failureReason(e: unknown): { code: string; message: string; detail: string } {
  const detail = e instanceof FetchError ? (e.detail ?? e.message) : ((e as Error)?.message ?? String(e));
  if (e instanceof FetchError) return { code: e.code, message: e.message, detail };
  if (e instanceof BlobTooLargeError) return { code: 'Client.ImageTooLarge', message: `the image is larger than ${e.maxBytes} bytes (KOALA_IMAGE_MAX_BYTES)`, detail };
  const code = (e as NodeJS.ErrnoException)?.code;
  if ((code && BODY_NETWORK_ERRORS.has(code)) || (e as Error)?.message === 'aborted') return { code: 'Client.InvalidImageLocation', message: LOCATION_NOT_FETCHED, detail };
  return { code: 'Server.InternalError', message: 'An internal error occurred while storing the image.', detail };
}
