import { Inject, Injectable } from '@nestjs/common';
import { applyFilters, Ec2Error, newId, type Filter, type FilterSpec, type Tag, type TagSpecification } from '@koala/ec2-query';
import { accessOf, allows, type Caller } from '../persistence/access-scope.js';
import { TaggableResources } from '../tags/taggable-resources.js';
import { QuotaService } from '../quotas/quota.service.js';
import { TagsService } from '../tags/tags.service.js';
import { KEY_MATERIAL, type KeyMaterial, type KeyType } from './key-material.js';
import { KEY_PAIRS_STORE, type KeyPairRow, type KeyPairsStore } from './key-pairs.repository.js';

export const KEY_PAIR_RESOURCE_TYPE = 'key-pair';

/** What the service needs of the tags module (TagsService; a fake in specs). */
export type KeyPairTags = Pick<TagsService, 'checkTagSpecifications' | 'applyTagSpecifications' | 'tagsOf' | 'deleteAllFor'>;
/** What the service needs of quotas. */
export type KeyPairQuotas = Pick<QuotaService, 'enforce'>;

export interface KeyPairView {
  keyPair: KeyPairRow;
  tags: Tag[];
}

type Item = KeyPairView;
const KEY_PAIR_FILTERS: FilterSpec<Item> = {
  'key-name': (i) => i.keyPair.name,
  'key-pair-id': (i) => i.keyPair.id,
  fingerprint: (i) => i.keyPair.fingerprint,
  'key-type': (i) => i.keyPair.keyType,
};

/** Key name rules: 1-255 ASCII characters. */
export function validateKeyName(name: string): void {
  if (name.length === 0) throw Ec2Error.missingParameter('KeyName');
  if (!/^[\x00-\x7F]*$/.test(name)) {
    throw Ec2Error.invalidParameterValue('KeyName', name, 'Character sets beyond ASCII are not supported.');
  }
  if (name.length > 255) throw Ec2Error.invalidParameterValue('KeyName', name, 'Length must not exceed 255 characters.');
}

function duplicate(name: string): Ec2Error {
  return Ec2Error.duplicate('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
}

/**
 * Key pairs: create (private key returned once, never stored), import, describe, delete.
 * Fingerprints as AWS (see key-material.ts). DeleteKeyPair by name succeeds when the caller has
 * no such key (as AWS); by KeyPairId a missing/foreign id is `InvalidKeyPair.NotFound`. The
 * stored public key is an OpenSSH line (`ssh-rsa|ssh-ed25519 AAAA… comment`) for the config drive.
 */
@Injectable()
export class KeyPairsService {
  constructor(
    @Inject(KEY_PAIRS_STORE) private readonly repo: KeyPairsStore,
    @Inject(KEY_MATERIAL) private readonly keys: KeyMaterial,
    @Inject(TagsService) private readonly tags: KeyPairTags,
    @Inject(TaggableResources) registry: TaggableResources,
    @Inject(QuotaService) private readonly quotas: KeyPairQuotas,
  ) {
    registry.register({
      prefix: 'key',
      resourceType: KEY_PAIR_RESOURCE_TYPE,
      notFoundCode: 'InvalidKeyPair.NotFound',
      owners: (tx, ids) => this.repo.owners(tx, ids),
    });
  }

  /** CreateKeyPair: returns the private key (PEM) once. */
  async create(caller: Caller, now: Date, input: { name: string; keyType: KeyType; tagSpecifications: readonly TagSpecification[] }): Promise<KeyPairView & { privateKey: string }> {
    validateKeyName(input.name);
    this.tags.checkTagSpecifications(KEY_PAIR_RESOURCE_TYPE, input.tagSpecifications);
    await this.assertNameFree(caller.id, input.name);
    const key = await this.keys.generate(input.keyType, input.name);
    const view = await this.insert(caller, now, input.name, key.keyType, key.fingerprint, key.publicKey, input.tagSpecifications);
    return { ...view, privateKey: key.privateKeyPem };
  }

  /** ImportKeyPair: `material` is the decoded PublicKeyMaterial. */
  async import(caller: Caller, now: Date, input: { name: string; material: Buffer; tagSpecifications: readonly TagSpecification[] }): Promise<KeyPairView> {
    validateKeyName(input.name);
    this.tags.checkTagSpecifications(KEY_PAIR_RESOURCE_TYPE, input.tagSpecifications);
    const key = this.keys.parsePublicKey(input.material);
    await this.assertNameFree(caller.id, input.name);
    return this.insert(caller, now, input.name, key.keyType, key.fingerprint, key.publicKey, input.tagSpecifications);
  }

  /**
   * DescribeKeyPairs: the caller's key pairs (the admin's: every account's), sorted by name.
   * A requested name or id that is not visible → `InvalidKeyPair.NotFound`.
   */
  async describe(caller: Caller, q: { names: readonly string[]; ids: readonly string[]; filters: readonly Filter[] }): Promise<KeyPairView[]> {
    const rows = await this.repo.listVisible(caller);
    for (const name of q.names) if (!rows.some((r) => r.name === name)) throw Ec2Error.notFound('InvalidKeyPair.NotFound', name);
    for (const id of q.ids) if (!rows.some((r) => r.id === id)) throw Ec2Error.notFound('InvalidKeyPair.NotFound', id);
    const selected = rows.filter((r) => (!q.names.length || q.names.includes(r.name)) && (!q.ids.length || q.ids.includes(r.id)));
    const tags = await this.tags.tagsOf(selected.map((r) => r.id));
    const items = selected.map((keyPair) => ({ keyPair, tags: tags.get(keyPair.id) ?? [] }));
    return applyFilters(items, q.filters, KEY_PAIR_FILTERS, (i) => i.tags);
  }

  /**
   * DeleteKeyPair by id (the admin: any account's; missing → `InvalidKeyPair.NotFound`) or by
   * name (the caller's own; a missing name succeeds, as AWS). Returns the deleted id, if any.
   */
  async delete(caller: Caller, by: { name?: string; id?: string }): Promise<string | undefined> {
    return this.repo.transaction(async (tx) => {
      let row: KeyPairRow | undefined;
      if (by.id !== undefined) {
        row = await this.repo.findById(tx, by.id);
        if (!row || !allows(accessOf(caller, row), 'change')) throw Ec2Error.notFound('InvalidKeyPair.NotFound', by.id);
      } else {
        row = await this.repo.findByName(tx, caller.id, by.name ?? '');
        if (!row) return undefined;
      }
      await this.repo.delete(tx, row.id);
      await this.tags.deleteAllFor(row.id, tx);
      return row.id;
    });
  }

  private async assertNameFree(accountId: string, name: string): Promise<void> {
    if (await this.repo.nameTaken(accountId, name)) throw duplicate(name);
  }

  private async insert(caller: Caller, now: Date, name: string, keyType: KeyType, fingerprint: string, publicKey: string, specs: readonly TagSpecification[]): Promise<KeyPairView> {
    return this.repo.transaction(async (tx) => {
      await this.quotas.enforce(tx, caller, { kind: 'key-pair' });
      const keyPair: KeyPairRow = { id: newId('key'), accountId: caller.id, name, keyType, fingerprint, publicKey, createdAt: now };
      if (!(await this.repo.insert(tx, keyPair))) throw duplicate(name);
      const tags = await this.tags.applyTagSpecifications(caller, KEY_PAIR_RESOURCE_TYPE, keyPair.id, specs, tx);
      return { keyPair, tags };
    });
  }
}
