import { Inject, Injectable, Optional, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ImageSpec, type ImageBlob } from '@koala/contracts';
import { KOALA_CONFIG, type KoalaConfig } from '@koala/config';
import { applyFilters, Ec2Error, idPrefixOf, isValidId, newId, paginate, type Filter, type FilterSpec, type PermissionChange, type Tag, type TagSpecification } from '@koala/ec2-query';
import { CLOCK, LOGGER, type Clock } from '@koala/runtime';
import type { Logger } from '@koala/logging';
import type { Readable } from 'node:stream';
import { decryptSecret, encryptSecret } from '@koala/aws-auth';
import { MASTER_KEY } from '../auth/master-key.js';
import { accessOf, allows, type Access, type Caller } from '../persistence/access-scope.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import type { QuotaRequest } from '../quotas/quota-rules.js';
import { TagsService } from '../tags/tags.service.js';
import { BLOB_STORE, BlobTooLargeError, type BlobStore, type PutResult } from './blob-store.js';
import { BlobUrlSigner } from './blob-url-signer.js';
import { displayLocation, FetchError, IMAGE_FETCHER, isFetchableUrl, LOCATION_NOT_FETCHED, type ImageFetcher } from './image-fetcher.js';
import { detectImageFormat, FORMAT_PROBE_BYTES, type ImageFormatInfo } from './image-format.js';
import type { ImageLaunchPort } from './image-launch.port.js';
import { IMAGE_USAGE, type ImageUsage } from './image-usage.port.js';
import type { Architecture, ImageType, VirtualizationType } from './image.entity.js';
import { IMAGES_STORE, type ImageRow, type ImagesStore, type ImageUpdate, type Tx } from './images.repository.js';
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

/** What the service needs of the tags module (TagsService; a fake in specs). */
export type ImageTags = Pick<TagsService, 'checkTagSpecifications' | 'applyTagSpecifications' | 'tagsOf' | 'deleteAllFor'>;
/** What the service needs of quotas (QuotaService; absent for the operator's import). */
export type ImageQuotas = Pick<QuotaService, 'enforce'>;

export interface ImageView {
  image: ImageRow;
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
    throw new Ec2Error('InvalidAMIName.Malformed', `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_': ${JSON.stringify(name)}`);
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

/** The columns a new image row gets unless given. */
const NEW_IMAGE_DEFAULTS = {
  stateReasonCode: null,
  stateReasonMessage: null,
  rootDeviceType: 'instance-store',
  kernelArgs: null,
  blobSha256: null,
  sizeBytes: null,
  format: null,
  isPublic: false,
  fetchLocation: null,
  deregisteredAt: null,
} as const satisfies Partial<ImageRow>;
type NewImage = Omit<ImageRow, keyof typeof NEW_IMAGE_DEFAULTS> & Partial<ImageRow>;

/**
 * Images: RegisterImage (asynchronous fetch into the blob store), DescribeImages, DeregisterImage,
 * image attributes and launch permissions, operator import, and the launch spec for instances.
 *
 * Visibility is the one access rule (persistence/access-scope.ts, IMAGE_SHARING): the owner
 * (and the admin) may see and change an image; everyone sees a public one and accounts with a
 * launch permission see (and launch) it, without changing it (AuthFailure); nobody else sees it
 * (InvalidAMIID.NotFound). Deregistered images are invisible (their rows stay for instances).
 */
@Injectable()
export class ImagesService implements ImageLaunchPort, OnApplicationBootstrap, OnModuleDestroy {
  private readonly jobs = new Map<string, { ac: AbortController; done: Promise<void> }>();
  private closing = false;

  constructor(
    @Inject(IMAGES_STORE) private readonly repo: ImagesStore,
    @Inject(BLOB_STORE) private readonly blobs: BlobStore,
    @Inject(IMAGE_FETCHER) private readonly fetcher: ImageFetcher,
    @Inject(BLOB_URL_SIGNER) private readonly signer: BlobUrlSigner,
    @Inject(TagsService) private readonly tags: ImageTags,
    @Inject(IMAGE_USAGE) private readonly usage: ImageUsage,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(KOALA_CONFIG) private readonly config: ImagesConfig,
    @Inject(TaggableResources) registry: TaggableResources,
    @Inject(MASTER_KEY) private readonly masterKey: string,
    @Optional() @Inject(LOGGER) private readonly log?: Logger,
    // Absent only for the operator's `koala image import` (not subject to quotas).
    @Optional() @Inject(QuotaService) private readonly quotas?: ImageQuotas,
    @Optional() @Inject(CLC_ROLE) private readonly role?: ClcRole,
  ) {
    for (const prefix of ['emi', 'eki', 'eri']) {
      registry.register({
        prefix,
        resourceType: IMAGE_RESOURCE_TYPE,
        notFoundCode: 'InvalidAMIID.NotFound',
        owners: (tx, ids) => this.repo.owners(tx, ids),
      });
    }
  }

  /** Resumes fetches that a stopped CLC left `pending`. */
  async onApplicationBootstrap(): Promise<void> {
    if (!runsBackground(this.role)) return; // worker 0 resumes them
    for (const img of await this.repo.pendingFetches()) {
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
  async register(caller: Caller, now: Date, input: RegisterImageInput): Promise<ImageRow> {
    const { imageType, virtualizationType, rootDeviceName } = registerShape(input);
    const shown = displayLocation(input.imageLocation);
    this.tags.checkTagSpecifications(IMAGE_RESOURCE_TYPE, input.tagSpecifications);
    await this.checkBootImages(caller, input.kernelId, input.ramdiskId);
    const image = await this.insert(
      caller,
      {
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
      },
      input.tagSpecifications,
      undefined,
      { kind: 'image', fetch: true },
    );
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

  /** Inserts the row (name unique per account among registered images) and its tags, in `tx` or its own transaction. */
  private async insert(caller: Caller, row: NewImage, specs: readonly TagSpecification[], tx?: Tx, quota?: QuotaRequest): Promise<ImageRow> {
    const work = async (tx: Tx) => {
      if (quota) await this.quotas?.enforce(tx, caller, quota);
      const existing = await this.repo.findByName(tx, row.accountId, row.name);
      if (existing) throw duplicateName(row.name, existing.id);
      const image: ImageRow = { ...NEW_IMAGE_DEFAULTS, ...row };
      if (!(await this.repo.insert(tx, image))) throw duplicateName(row.name, '(concurrent registration)');
      await this.tags.applyTagSpecifications(caller, IMAGE_RESOURCE_TYPE, image.id, specs, tx);
      return image;
    };
    return tx ? work(tx) : this.repo.transaction(work);
  }

  private startFetch(id: string, url: string, imageType: ImageType): void {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new FetchError('Client.ImageFetchTimeout', `fetching the image took longer than ${this.config.imageFetchTimeoutMs} ms`)), this.config.imageFetchTimeoutMs);
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
      await this.repo.markFailed(id, { code, message }).catch(() => undefined);
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
    return this.repo.transaction(async (tx) => {
      await this.repo.lockDigest(tx, sha256);
      if ((await this.blobs.size(sha256)) === undefined) throw new FetchError('Server.InternalError', 'the stored image vanished; register it again');
      return this.repo.markAvailable(tx, id, { sha256, size, format: info.format });
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
    // Visibility (and the ids asked for) narrowed in SQL; Owner/ExecutableBy/filters in memory.
    const visible = await this.repo.listVisible(caller, q.imageIds);
    for (const id of q.imageIds) if (!visible.some((r) => r.id === id)) throw Ec2Error.notFound('InvalidAMIID.NotFound', id);
    const perms = await this.repo.permissionsOf(visible.map((r) => r.id));
    const adminId = visible.length ? await this.repo.adminAccountId() : undefined;
    const selected = visible.filter((r) => ownerMatches(caller, q.owners, r, adminId) && executableMatches(caller, q.executableBy, r, perms.get(r.id)));
    // Tags are the owner's notes: accounts the image is shared with (or public to) see none, and
    // `tag:` filters match nothing of them for those accounts.
    const tags = await this.tags.tagsOf(selected.filter((r) => allows(accessOf(caller, r), 'change')).map((r) => r.id));
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

  /** A registered image and what the caller has of it; NotFound (as if it did not exist) when it may not see it. */
  private async accessTo(caller: Caller, id: string, tx: Tx = this.repo.pool): Promise<{ image: ImageRow; access: Access }> {
    checkImageId(id);
    const found = await this.repo.findRegistered(tx, id, caller.id);
    const access = found ? accessOf(caller, found) : 'none';
    if (!found || !allows(access, 'see')) throw Ec2Error.notFound('InvalidAMIID.NotFound', id);
    const { grantedToCaller: _, ...image } = found;
    return { image, access };
  }

  /** An image the caller may see (and launch): NotFound otherwise. */
  private async findVisible(caller: Caller, id: string, tx?: Tx): Promise<ImageRow> {
    return (await this.accessTo(caller, id, tx)).image;
  }

  /** An image the caller may change (its own; the admin: any); visible but shared → AuthFailure. */
  private async findOwned(caller: Caller, id: string, tx: Tx): Promise<ImageRow> {
    const { image, access } = await this.accessTo(caller, id, tx);
    if (!allows(access, 'change')) throw notAuthorized(id);
    return image;
  }

  // ---- DeregisterImage ------------------------------------------------------------------

  async deregister(caller: Caller, id: string): Promise<void> {
    const img = await this.repo.transaction(async (tx) => {
      const img = await this.findOwned(caller, id, tx);
      await this.repo.deregister(tx, id, this.clock.now());
      await this.tags.deleteAllFor(id, tx);
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
    for (const sha256 of candidates) if (await this.collectBlob(sha256)) deleted.push(sha256);
    return deleted;
  }

  /** Deletes one blob unless a registered image or a running instance needs it (under the digest's lock). */
  private async collectBlob(sha256: string): Promise<boolean> {
    return this.repo.transaction(async (tx) => {
      await this.repo.lockDigest(tx, sha256);
      const users = await this.repo.imagesOfBlob(tx, sha256);
      if (users.some((u) => u.deregisteredAt === null)) return false;
      if (users.length) {
        const ids = users.map((u) => u.id);
        const inUse = await this.usage.imagesInUse([...ids, ...(await this.repo.referencing(tx, ids))], tx);
        if (inUse.size) return false;
      }
      return this.blobs.delete(sha256);
    });
  }

  // ---- attributes -----------------------------------------------------------------------

  async describeAttribute(caller: Caller, id: string): Promise<{ image: ImageRow; isOwner: boolean; permissions: string[] }> {
    const { image, access } = await this.accessTo(caller, id);
    const isOwner = allows(access, 'change');
    const permissions = isOwner ? [...((await this.repo.permissionsOf([id])).get(id) ?? [])].sort() : [];
    return { image, isOwner, permissions };
  }

  /** ModifyImageAttribute: launch permission changes and/or a new description (owner only). */
  async modifyAttribute(caller: Caller, id: string, change: PermissionChange & { description?: string }): Promise<void> {
    for (const u of [...change.add.accounts, ...change.remove.accounts]) {
      if (!/^\d{12}$/.test(u)) throw new Ec2Error('InvalidAMIAttributeItemValue', `Invalid attribute item value "${u}" for userId item type.`);
    }
    validateDescription(change.description);
    await this.repo.transaction(async (tx) => {
      const img = await this.findOwned(caller, id, tx);
      await this.repo.grant(tx, id, change.add.accounts);
      await this.repo.revoke(tx, id, change.remove.accounts);
      const update: ImageUpdate = {};
      if (change.add.all) update.isPublic = true;
      if (change.remove.all) update.isPublic = false;
      if (change.description !== undefined) update.description = change.description;
      if (Object.keys(update).length) await this.repo.update(tx, img.id, update);
    });
  }

  /** ResetImageAttribute launchPermission: private, no shares. */
  async resetLaunchPermission(caller: Caller, id: string): Promise<void> {
    await this.repo.transaction(async (tx) => {
      await this.findOwned(caller, id, tx);
      await this.repo.revoke(tx, id);
      await this.repo.update(tx, id, { isPublic: false });
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
      // The kernel and ramdisk named at registration, as long as they stay registered.
      const boot = async (bootId: string | null, kind: ImageType) => {
        if (!bootId) return undefined;
        const b = await this.repo.findRegistered(this.repo.pool, bootId, who.id);
        if (!b || b.imageType !== kind) throw Ec2Error.invalidParameterValue('ImageId', imageId, `The ${kind} image ${bootId} of this image is no longer registered.`);
        return this.blobOf(b);
      };
      const kernel = await boot(img.kernelId, 'kernel');
      if (!kernel) throw Ec2Error.invalidParameterValue('ImageId', imageId, 'The paravirtual image has no kernel.');
      spec = { virtualizationType: 'paravirtual', root, kernel, ramdisk: await boot(img.ramdiskId, 'ramdisk'), kernelArgs: img.kernelArgs ?? undefined };
    }
    return { spec: ImageSpec.parse(spec), architecture: img.architecture, rootDeviceName: img.rootDeviceName };
  }

  private blobOf(img: ImageRow): ImageBlob {
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
  async importImage(owner: Caller, input: ImportImageInput): Promise<{ image: ImageRow; existed: boolean }> {
    validateImageName(input.name);
    validateDescription(input.description);
    const rootDeviceName = input.rootDeviceName ?? DEFAULT_ROOT_DEVICE_NAME;
    validateRootDeviceName(rootDeviceName);
    if (input.virtualizationType === 'paravirtual' && input.imageType === 'machine' && !input.kernelId) throw new ImageImportError('a paravirtual image needs a kernel');
    const { put, info } = await this.storeImport(input);
    let replaced: ImageRow | undefined;
    const result = await this.repo.transaction(async (tx) => {
      await this.repo.lockDigest(tx, put.sha256);
      await this.repo.lockName(tx, owner.id, input.name);
      if ((await this.blobs.size(put.sha256)) === undefined) throw new ImageImportError('the stored image vanished (deleted concurrently): import again');
      const existing = await this.repo.findByName(tx, owner.id, input.name);
      if (existing) {
        const kept = await this.keepOrReplace(tx, input, existing, put.sha256);
        if (kept) return kept;
        replaced = existing;
      }
      const image = await this.insert(owner, importedRow(owner, input, rootDeviceName, put, info, this.clock.now()), [], tx);
      return { image, existed: false };
    });
    if (replaced?.blobSha256) await this.collectUnreferencedBlobs([replaced.blobSha256]);
    return result;
  }

  /** Stores the import's bytes (a raw disk as a compact qcow2) and checks the stored format. */
  private async storeImport(input: ImportImageInput): Promise<{ put: PutResult; info: ImageFormatInfo }> {
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
    return { put, info };
  }

  /**
   * An import meets a registered image of the same name: the same content answers it (made
   * public if asked); other content is refused unless `replace`, which deregisters it (→ undefined).
   */
  private async keepOrReplace(tx: Tx, input: ImportImageInput, existing: ImageRow, sha256: string): Promise<{ image: ImageRow; existed: true } | undefined> {
    const same =
      existing.blobSha256 === sha256 &&
      existing.imageType === input.imageType &&
      existing.virtualizationType === input.virtualizationType &&
      (existing.kernelId ?? undefined) === input.kernelId &&
      (existing.ramdiskId ?? undefined) === input.ramdiskId &&
      (existing.kernelArgs ?? undefined) === (input.kernelArgs || undefined);
    if (same) {
      if (input.isPublic && !existing.isPublic) await this.repo.update(tx, existing.id, { isPublic: true });
      return { image: { ...existing, isPublic: existing.isPublic || input.isPublic }, existed: true };
    }
    if (!input.replace) {
      throw new ImageImportError(`an image named "${input.name}" already exists (${existing.id}) with other content: use --replace to replace it`);
    }
    await this.repo.deregister(tx, existing.id, this.clock.now());
    await this.tags.deleteAllFor(existing.id, tx);
    return undefined;
  }

  /** Registered images of every account (operator listing), newest first. */
  async listAll(): Promise<ImageRow[]> {
    return this.repo.listRegistered();
  }
}

/** RegisterImage's parameters checked, with their defaults. */
function registerShape(input: RegisterImageInput): { imageType: ImageType; virtualizationType: VirtualizationType; rootDeviceName: string } {
  validateImageName(input.name);
  validateDescription(input.description);
  if (!isFetchableUrl(input.imageLocation)) {
    throw Ec2Error.invalidParameterValue('ImageLocation', undefined, 'Only http and https image locations are supported.');
  }
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
  return { imageType, virtualizationType, rootDeviceName };
}

/** The row of an imported image (`available` at once). */
function importedRow(owner: Caller, input: ImportImageInput, rootDeviceName: string, put: PutResult, info: ImageFormatInfo, now: Date): NewImage {
  return {
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
    createdAt: now,
  };
}

/** Owner.N: `self`, an account id, or `amazon` (the admin's public images); none given = any. */
function ownerMatches(caller: Caller, owners: readonly string[], r: ImageRow, adminId: string | undefined): boolean {
  if (!owners.length) return true;
  return owners.some((o) => (o === 'amazon' ? r.accountId === adminId && r.isPublic : r.accountId === (o === 'self' ? caller.id : o)));
}

/** ExecutableBy.N (see `describe`); `granted`: the accounts with a launch permission on `r`. */
function executableMatches(caller: Caller, executableBy: readonly string[], r: ImageRow, granted: ReadonlySet<string> | undefined): boolean {
  if (!executableBy.length) return true;
  return executableBy.some((x) => {
    if (x === 'all') return r.isPublic;
    if (x === 'self' || x === caller.id) return r.accountId === caller.id || !!granted?.has(caller.id);
    return !!granted?.has(x);
  });
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
