import { Injectable } from '@nestjs/common';
import { checkDryRun, Ec2Error, FILTER_SHAPES, type Params, readFilters, readTagSpecifications, TAG_SPECIFICATION_SHAPES } from '@koala/ec2-query';
import { Ec2Action, type Ec2Context } from '../ec2/ec2-action.decorator.js';
import { tagSet } from '../tags/tags.service.js';
import { KeyPairsService, type KeyPairView } from './key-pairs.service.js';

function keyItem(v: KeyPairView, includePublicKey = false) {
  return {
    keyPairId: v.keyPair.id,
    keyType: v.keyPair.keyType,
    tagSet: tagSet(v.tags),
    keyName: v.keyPair.name,
    keyFingerprint: v.keyPair.fingerprint,
    publicKey: includePublicKey ? v.keyPair.publicKey : undefined,
    createTime: v.keyPair.createdAt,
  };
}

/** PublicKeyMaterial: base64 of the key file (what SDKs send); a raw OpenSSH/PEM text is accepted too. */
function publicKeyMaterial(p: Params): Buffer {
  const raw = p.str('PublicKeyMaterial', { required: true });
  const t = raw.trim();
  if (t.startsWith('ssh-') || t.startsWith('-----BEGIN ')) return Buffer.from(t, 'utf8');
  try {
    return p.base64('PublicKeyMaterial', { required: true });
  } catch {
    throw Ec2Error.malformed('InvalidKeyPair.Format', '');
  }
}

/** CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair. */
@Injectable()
export class KeyPairsHandlers {
  constructor(private readonly keyPairs: KeyPairsService) {}

  @Ec2Action('CreateKeyPair', { params: ['KeyName', 'KeyType', 'KeyFormat', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async create(ctx: Ec2Context) {
    const p = ctx.params;
    const name = p.str('KeyName', { required: true });
    const keyType = p.enum('KeyType', ['rsa', 'ed25519'] as const) ?? 'rsa';
    p.enum('KeyFormat', ['pem'] as const);
    const tagSpecifications = readTagSpecifications(p);
    checkDryRun(p);
    const v = await this.keyPairs.create(ctx.account, ctx.now, { name, keyType, tagSpecifications });
    return {
      keyName: v.keyPair.name,
      keyFingerprint: v.keyPair.fingerprint,
      keyMaterial: v.privateKey,
      keyPairId: v.keyPair.id,
      tagSet: tagSet(v.tags),
    };
  }

  @Ec2Action('ImportKeyPair', { params: ['KeyName', 'PublicKeyMaterial', ...TAG_SPECIFICATION_SHAPES, 'DryRun'] })
  async import(ctx: Ec2Context) {
    const p = ctx.params;
    const name = p.str('KeyName', { required: true });
    const material = publicKeyMaterial(p);
    const tagSpecifications = readTagSpecifications(p);
    checkDryRun(p);
    const v = await this.keyPairs.import(ctx.account, ctx.now, { name, material, tagSpecifications });
    return { keyFingerprint: v.keyPair.fingerprint, keyName: v.keyPair.name, keyPairId: v.keyPair.id, tagSet: tagSet(v.tags) };
  }

  @Ec2Action('DescribeKeyPairs', { params: ['KeyName.N', 'KeyPairId.N', ...FILTER_SHAPES, 'IncludePublicKey', 'DryRun'] })
  async describe(ctx: Ec2Context) {
    const p = ctx.params;
    const q = { names: p.list('KeyName'), ids: p.list('KeyPairId'), filters: readFilters(p) };
    const includePublicKey = p.bool('IncludePublicKey') ?? false;
    checkDryRun(p);
    const items = await this.keyPairs.describe(ctx.account, q);
    return { keySet: items.map((v) => keyItem(v, includePublicKey)) };
  }

  @Ec2Action('DeleteKeyPair', { params: ['KeyName', 'KeyPairId', 'DryRun'] })
  async delete(ctx: Ec2Context) {
    const p = ctx.params;
    const id = p.str('KeyPairId') || undefined;
    const name = p.str('KeyName');
    if (id === undefined && !name) throw Ec2Error.missingParameter('KeyName');
    checkDryRun(p);
    const keyPairId = await this.keyPairs.delete(ctx.account, { id, name });
    return { return: true, keyPairId };
  }
}
