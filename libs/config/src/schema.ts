/**
 * Every environment variable Koala reads, in one table: name, default, parser, meaning.
 * `loadConfig` validates them all at start; README's configuration table mirrors this file.
 */
import { isIP } from 'node:net';
import { availableParallelism, hostname } from 'node:os';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`Invalid configuration: ${variable} ${reason}`);
    this.name = 'ConfigError';
  }
}

type Parser<T> = (raw: string, name: string) => T;

export interface VarSpec<T> {
  env: string;
  /** A fixed default, or one computed from the other variables given (and the host). */
  default: string | ((env: NodeJS.ProcessEnv) => string) | undefined;
  parse: Parser<T>;
  doc: string;
}

const fail = (name: string, reason: string): never => {
  throw new ConfigError(name, reason);
};

export const str: Parser<string> = (raw, name) => (raw.length ? raw : fail(name, 'must not be empty'));

export const optionalStr: Parser<string | undefined> = (raw) => (raw.length ? raw : undefined);

export const int =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    if (!/^-?\d+$/.test(raw.trim())) fail(name, `must be an integer, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) fail(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  };

export const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, name) => {
    const v = raw.trim();
    const match = values.find((x) => x.toLowerCase() === v.toLowerCase());
    return match ?? fail(name, `must be one of ${values.join(', ')}, got "${raw}"`);
  };

export const url =
  (...protocols: string[]): Parser<string> =>
  (raw, name) => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      return fail(name, `must be a URL, got "${raw}"`);
    }
    if (!protocols.includes(u.protocol.replace(/:$/, ''))) fail(name, `must use ${protocols.join(' or ')}, got "${u.protocol}"`);
    return raw;
  };

export const absPath: Parser<string> = (raw, name) => (raw.startsWith('/') ? raw : fail(name, `must be an absolute path, got "${raw}"`));

export const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export const cidr: Parser<string> = (raw, name) => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(raw.trim());
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32 || Number(m[5]) < 8) fail(name, `must be an IPv4 CIDR such as 198.51.100.0/24, got "${raw}"`);
  return raw.trim();
};

/** Comma-separated CIDRs (IPv4/IPv6) and/or host[:port] entries ([v6]:port; a bare v6 is a host). */
export const fetchAllow: Parser<string[]> = (raw, n) =>
  list(raw, n).map((e) => {
    const [addr, bits, extra] = e.split('/');
    const ok =
      bits !== undefined
        ? extra === undefined && /^\d{1,3}$/.test(bits) && isIP(addr!) !== 0 && Number(bits) <= (isIP(addr!) === 4 ? 32 : 128)
        : isIP(e) === 6 ||
          (/^(\[([0-9a-fA-F:.]+)\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(e) &&
            (!e.startsWith('[') || isIP(e.slice(1, e.indexOf(']'))) === 6) &&
            (!/:\d+$/.test(e) || (Number(e.slice(e.lastIndexOf(':') + 1)) >= 1 && Number(e.slice(e.lastIndexOf(':') + 1)) <= 65535)));
    return ok ? e : fail(n, `entries must be CIDRs or host[:port], got "${e}"`);
  });

export const name: Parser<string> = (raw, n) => (/^[a-z0-9][a-z0-9-]{0,62}$/.test(raw) ? raw : fail(n, `must be lower-case letters, digits and '-', got "${raw}"`));

/** A Linux interface or namespace name (at most 15 characters, no '/' or space). */
export const ifName: Parser<string> = (raw, n) => (/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(raw) ? raw : fail(n, `must be an interface name (up to 15 letters, digits, '_', '.', '-'), got "${raw}"`));
/**
 * `zone=cidr,...`: each zone's subnet (prefix /16 to /28, host bits cleared). `*=cidr` is the
 * subnet of every zone not listed (zones are separate L2 segments, so they may share one CIDR).
 */
export const zoneSubnets: Parser<Record<string, string>> = (raw, n) => {
  const out: Record<string, string> = {};
  for (const item of list(raw, n)) {
    const eq = item.indexOf('=');
    const zone = eq > 0 ? item.slice(0, eq).trim() : '';
    if (zone !== '*' && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(zone)) fail(n, `needs zone=cidr items, got "${item}"`);
    const c = cidr(item.slice(eq + 1), n);
    const [addr, bits] = c.split('/');
    const o = addr!.split('.').map(Number);
    const ip = ((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!;
    if (Number(bits) < 16 || Number(bits) > 28) fail(n, `${zone}: the prefix must be /16 to /28, got /${bits}`);
    if (ip % 2 ** (32 - Number(bits)) !== 0) fail(n, `${zone}: ${c} has host bits set`);
    if (zone in out) fail(n, `${zone} is given twice`);
    out[zone] = c;
  }
  return out;
};

export const bool: Parser<boolean> = (raw, n) => {
  const v = raw.trim().toLowerCase();
  return v === 'true' || v === '1' || v === 'yes' ? true : v === 'false' || v === '0' || v === 'no' ? false : fail(n, `must be true or false, got "${raw}"`);
};

const dnsName: Parser<string> = (raw, n) =>
  /^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(raw.trim()) ? raw.trim() : fail(n, `must be a DNS name, got "${raw}"`);

const def = <T>(env: string, dflt: VarSpec<T>['default'], parse: Parser<T>, doc: string): VarSpec<T> => ({ env, default: dflt, parse, doc });

/** The schema. Add a variable here and it is validated, typed and documented. */
export const SCHEMA = {
  home: def('KOALA_HOME', '/var/lib/koala', absPath, 'State, logs, pid files, image store and caches.'),
  logLevel: def('KOALA_LOG_LEVEL', 'info', oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal'), 'Minimum log level (JSON logs).'),
  databaseUrl: def('KOALA_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/koala', url('postgres', 'postgresql'), 'PostgreSQL database (created on first start).'),
  natsUrl: def('KOALA_NATS_URL', 'nats://127.0.0.1:4222', url('nats', 'tls'), 'NATS server: `nats://` or `tls://`, with `USER:PASSWORD@` or `TOKEN@` when the server requires them.'),
  natsCaFile: def('KOALA_NATS_CA_FILE', '', (raw, n) => (raw.length ? absPath(raw, n) : undefined), "CA certificate that signed the NATS server's (TLS); default: the system's CAs."),
  natsPort: def(
    'KOALA_NATS_PORT',
    '4223',
    int(0, 65535),
    "Port on 127.0.0.1 of the all-in-one cloud's own nats-server, started by `koala up` with a user and permissions per component (docs/SECURITY.md); 0: none, components use KOALA_NATS_URL.",
  ),
  region: def('KOALA_REGION', 'koala-1', name, 'The region name this cloud answers as.'),
  zone: def('KOALA_ZONE', 'koala-1a', name, 'Availability zone (cluster) of a CC, NC or SC.'),
  apiHost: def('KOALA_API_HOST', '0.0.0.0', str, 'Address the EC2 endpoint listens on.'),
  apiPort: def('KOALA_API_PORT', '8773', int(1, 65535), 'Port of the EC2 endpoint (Eucalyptus used 8773).'),
  publicEndpoint: def(
    'KOALA_PUBLIC_ENDPOINT',
    (env) => `${env.KOALA_API_TLS_CERT?.trim() ? 'https' : 'http'}://127.0.0.1:${env.KOALA_API_PORT?.trim() || '8773'}/`,
    url('http', 'https'),
    'Endpoint URL given to users (EC2_URL) and to NCs for image downloads.',
  ),
  apiWorkers: def(
    'KOALA_API_WORKERS',
    () => String(availableParallelism()),
    int(1, 256),
    'Processes serving the EC2 endpoint behind its one port (default: one per core); the first also runs the background jobs. A per-process limit (rate limits) is then N times the configured one.',
  ),
  apiMaxBodyBytes: def('KOALA_API_MAX_BODY_BYTES', String(1024 * 1024), int(1024, 64 * 1024 * 1024), 'Largest request body accepted before parsing.'),
  apiTlsCert: def('KOALA_API_TLS_CERT', '', (raw, n) => (raw.length ? absPath(raw, n) : undefined), 'PEM certificate (chain) of the EC2 endpoint; with KOALA_API_TLS_KEY the endpoint speaks HTTPS.'),
  apiTlsKey: def('KOALA_API_TLS_KEY', '', (raw, n) => (raw.length ? absPath(raw, n) : undefined), 'PEM private key of KOALA_API_TLS_CERT.'),
  presignMaxSeconds: def('KOALA_PRESIGN_MAX_SECONDS', '604800', int(1, 604800), 'Longest X-Amz-Expires a presigned SigV4 URL may carry (AWS: 7 days).'),
  masterKey: def('KOALA_MASTER_KEY', undefined, optionalStr, 'Key that encrypts secrets at rest; default: $KOALA_HOME/master.key (created by set-up).'),
  nodeName: def('KOALA_NODE_NAME', () => hostname(), name, 'Name a node controller registers under.'),
  libvirtUri: def('KOALA_LIBVIRT_URI', 'qemu:///system', str, 'libvirt connection URI of a node controller (test:///... for simulated hosts).'),
  libvirtSocket: def('KOALA_LIBVIRT_SOCKET', '/var/run/libvirt/libvirt-sock', absPath, 'libvirtd UNIX socket.'),
  heartbeatMs: def('KOALA_HEARTBEAT_MS', '5000', int(100, 600000), 'How often NCs and SCs announce themselves.'),
  nodeTimeoutMs: def('KOALA_NODE_TIMEOUT_MS', '20000', int(500, 3600000), 'A node silent this long is reported down.'),
  schedulerPolicy: def('KOALA_SCHEDULER_POLICY', 'GREEDY', oneOf('GREEDY', 'ROUNDROBIN'), 'Placement policy of the CC.'),
  publicIpRange: def('KOALA_PUBLIC_IP_RANGE', '198.51.100.0/24', cidr, 'Pool of elastic (public) addresses.'),
  zoneSubnets: def('KOALA_ZONE_SUBNETS', '*=172.31.0.0/20', zoneSubnets, "`zone=cidr,...`: each zone's subnet (instance private IPs, node addresses); `*=cidr` for every zone not listed."),
  associatePublicIp: def('KOALA_ASSOCIATE_PUBLIC_IP', 'true', bool, 'Give instances a public address at launch unless AssociatePublicIpAddress=false.'),
  networkRepublishMs: def('KOALA_NETWORK_REPUBLISH_MS', '30000', int(100, 3600000), "How often the CLC publishes each zone's desired network state again (it also does on every change)."),
  dnsSuffix: def('KOALA_DNS_SUFFIX', (env) => `${env.KOALA_REGION?.trim() || 'koala-1'}.compute.internal`, dnsName, "Suffix of instances' private DNS names (`ip-10-0-0-5.<suffix>`)."),
  addressesPerAccount: def('KOALA_ADDRESSES_PER_ACCOUNT', '5', int(0, 1000000), 'Elastic IP addresses one account may hold (AddressLimitExceeded beyond); default of the `addresses` quota.'),
  // Per-account quotas (defaults; `koala quota set ACCOUNT NAME VALUE` overrides one account's; the admin account is exempt).
  quotaInstances: def('KOALA_QUOTA_INSTANCES', '20', int(0, 1e9), 'Instances (not terminated) per account: InstanceLimitExceeded beyond.'),
  quotaVcpus: def('KOALA_QUOTA_VCPUS', '64', int(0, 1e9), "vCPUs of an account's instances (not terminated): VcpuLimitExceeded beyond."),
  quotaVolumes: def('KOALA_QUOTA_VOLUMES', '50', int(0, 1e9), 'Volumes (not deleted) per account: VolumeLimitExceeded beyond.'),
  quotaVolumeGiB: def('KOALA_QUOTA_VOLUME_GIB', '1024', int(0, 1e9), "Total GiB of an account's volumes (not deleted): VolumeLimitExceeded beyond."),
  quotaSnapshots: def('KOALA_QUOTA_SNAPSHOTS', '100', int(0, 1e9), 'Snapshots per account: SnapshotLimitExceeded beyond.'),
  quotaImages: def('KOALA_QUOTA_IMAGES', '50', int(0, 1e9), 'Registered images (incl. kernels, ramdisks, failed ones) per account: ResourceLimitExceeded beyond.'),
  quotaImageFetches: def('KOALA_QUOTA_IMAGE_FETCHES', '2', int(0, 1e9), 'RegisterImage fetches (pending images) one account may run at once: ResourceLimitExceeded beyond.'),
  quotaKeyPairs: def('KOALA_QUOTA_KEY_PAIRS', '100', int(0, 1e9), 'Key pairs per account: ResourceLimitExceeded beyond.'),
  quotaSecurityGroups: def('KOALA_QUOTA_SECURITY_GROUPS', '100', int(0, 1e9), 'Security groups (incl. `default`) per account: SecurityGroupLimitExceeded beyond.'),
  quotaRulesPerGroup: def('KOALA_QUOTA_RULES_PER_GROUP', '60', int(0, 1e9), 'Rules per security group and direction: RulesPerSecurityGroupLimitExceeded beyond.'),
  apiRate: def('KOALA_API_RATE', '20', int(1, 1e6), 'Requests per second each access key may sustain (token bucket; RequestLimitExceeded, 503, beyond; the admin account is exempt).'),
  apiBurst: def('KOALA_API_BURST', '100', int(1, 1e7), "Requests an idle access key may send at once (the bucket's size)."),
  instanceTypesFile: def('KOALA_INSTANCE_TYPES_FILE', '', optionalStr, 'JSON file replacing the built-in instance type table.'),
  iscsiPortal: def('KOALA_ISCSI_PORTAL', '127.0.0.1:3260', str, 'host:port of the tgt iSCSI portal an SC exports volumes on.'),
  imageMaxBytes: def('KOALA_IMAGE_MAX_BYTES', String(20 * 1024 ** 3), int(1024 * 1024, 2 ** 50), 'Largest image RegisterImage fetches or `koala image import` stores (bytes).'),
  imageFetchTimeoutMs: def('KOALA_IMAGE_FETCH_TIMEOUT_MS', '1800000', int(1000, 24 * 3600000), 'RegisterImage gives up fetching an ImageLocation after this long (the image fails).'),
  imageFetchAllow: def(
    'KOALA_IMAGE_FETCH_ALLOW',
    '',
    fetchAllow,
    'Destinations RegisterImage may fetch from although they are not public (loopback, private, link-local, CGNAT, reserved are refused otherwise): comma-separated CIDRs (10.1.2.0/24, fd00::/8) and/or host[:port] (mirror.lan, 127.0.0.1:8080, [::1]:8080; an address also allows names resolving to it).',
  ),
  imageUrlTtlSeconds: def('KOALA_IMAGE_URL_TTL_SECONDS', '3600', int(60, 7 * 86400), 'Lifetime of the signed image-store URLs given to NCs.'),
  maxInstancesPerRun: def('KOALA_MAX_INSTANCES_PER_RUN', '20', int(1, 10000), 'Most instances one RunInstances may launch (MinCount above → InvalidParameterValue; MaxCount is capped).'),
  reconcileIntervalMs: def('KOALA_RECONCILE_INTERVAL_MS', '10000', int(100, 3600000), 'How often the CLC compares instances with the domains the nodes report.'),
  reconcileGraceMs: def('KOALA_RECONCILE_GRACE_MS', '60000', int(0, 86400000), 'How long an instance/domain mismatch must last before the CLC corrects it.'),
  launchTimeoutMs: def('KOALA_LAUNCH_TIMEOUT_MS', '900000', int(1000, 86400000), 'A pending instance with no domain and no event for this long is terminated (Server.InternalError).'),
  terminatedRetentionMs: def('KOALA_TERMINATED_RETENTION_MS', '3600000', int(0, 30 * 86400000), 'How long terminated instances stay visible in DescribeInstances.'),
  eventsConsumer: def('KOALA_EVENTS_CONSUMER', 'clc-instances', name, 'Durable JetStream consumer of instance events (clouds sharing one NATS need distinct names).'),
  imageCacheMaxBytes: def(
    'KOALA_IMAGE_CACHE_MAX_BYTES',
    String(20 * 1024 ** 3),
    int(0, 2 ** 50),
    'Soft cap of an NC image cache (bytes): least recently used images not in use are evicted beyond it.',
  ),
  imageCachePool: def('KOALA_IMAGE_CACHE_POOL', 'koala-images', name, 'libvirt dir pool holding an NC image cache (simulated nodes sharing test:///default need distinct names).'),
  imageCacheDir: def('KOALA_IMAGE_CACHE_DIR', '', (raw, n) => (raw.length ? absPath(raw, n) : undefined), 'Directory of the image cache pool; default $KOALA_HOME/cache/images.'),
  imageDownloadStallMs: def('KOALA_IMAGE_DOWNLOAD_STALL_MS', '60000', int(1000, 3600000), 'An NC image download with no response or no data for this long fails.'),
  storageBackend: def('KOALA_STORAGE_BACKEND', 'dir', oneOf('dir', 'logical'), 'Volume backend of an SC: `dir` (sparse raw files in a libvirt dir pool) or `logical` (LVM volume group, real hosts).'),
  lvmVg: def('KOALA_LVM_VG', 'koala', name, 'LVM volume group of the `logical` backend (must exist; the SC never runs vgcreate).'),
  volumesPool: def('KOALA_VOLUMES_POOL', 'koala-volumes', name, "libvirt storage pool of an SC's volumes."),
  volumesDir: def('KOALA_VOLUMES_DIR', '', (raw, n) => (raw.length ? absPath(raw, n) : undefined), 'Directory of the `dir` volume pool; default $KOALA_HOME/volumes.'),
  snapshotsPool: def('KOALA_SNAPSHOTS_POOL', 'koala-snapshots', name, "libvirt dir pool of an SC's snapshots."),
  snapshotsDir: def('KOALA_SNAPSHOTS_DIR', '', (raw, n) => (raw.length ? absPath(raw, n) : undefined), 'Directory of the snapshot pool; default $KOALA_HOME/snapshots.'),
  storageCapacityBytes: def('KOALA_STORAGE_CAPACITY_BYTES', '0', int(0, 2 ** 53 - 1), "Most bytes of volumes (by size) an SC holds (InsufficientVolumeCapacity beyond); 0 = the volume pool's size."),
  iscsiReconcileMs: def('KOALA_ISCSI_RECONCILE_MS', '5000', int(100, 3600000), 'How often an SC rebuilds tgt targets from the exports the CLC lists (tgtd keeps nothing across restarts).'),
  ncStopTimeoutMs: def('KOALA_NC_STOP_TIMEOUT_MS', '60000', int(0, 3600000), 'How long a node controller waits for a guest to power off after an ACPI shutdown (StopInstances) before destroying it.'),
  ncInstancesPool: def('KOALA_NC_INSTANCES_POOL', 'koala-instances', name, 'libvirt dir pool (in $KOALA_HOME/instances) holding instance disks: root overlays, ephemeral disks, config drives.'),
  metadataPort: def('KOALA_METADATA_PORT', '8775', int(1, 65535), "Port of a node's metadata relay on its address on the zone segment (guests' 169.254.169.254:80 is DNATed to it)."),
  ncDomainType: def('KOALA_NC_DOMAIN_TYPE', 'auto', oneOf('auto', 'kvm', 'qemu'), 'Domain type of instances: auto = kvm where /dev/kvm is usable by QEMU and libvirt offers it, else qemu (TCG).'),
  nodeNetns: def(
    'KOALA_NODE_NETNS',
    '',
    (raw, n) => (!raw.length ? undefined : /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(raw) ? raw : fail(n, `must be a namespace name (letters, digits, '_', '.', '-'), got "${raw}"`)),
    "Network namespace holding a node's guest networking (ip/iptables/ipset run in it); empty: the NC's own.",
  ),
  nodeBridge: def('KOALA_NODE_BRIDGE', 'koala-br0', ifName, "Bridge of the node's libvirt network (koala-<zone>)."),
  nodeUplink: def(
    'KOALA_NODE_UPLINK',
    '',
    (raw, n) => (raw.length ? ifName(raw, n) : undefined),
    "Interface on the zone's L2 segment the NC enslaves to the bridge. Guest networking is off unless this or KOALA_NODE_NETNS is set.",
  ),
  nodePublicIf: def('KOALA_NODE_PUBLIC_IF', '', (raw, n) => (raw.length ? ifName(raw, n) : undefined), "Interface that holds the public addresses of the node's instances (none: not held)."),
  aioNetns: def(
    'KOALA_AIO_NETNS',
    'koala',
    (raw, n) => (/^(none|[a-z0-9][a-z0-9-]{0,8})$/.test(raw) ? raw : fail(n, `must be none or a prefix of 1-9 characters [a-z0-9-], got "${raw}"`)),
    "`koala up`: prefix of the all-in-one's namespaces `<p>-node1` (node host: libvirtd + guests), `<p>-seg` (zone segment), `<p>-pub` (public side, router 198.51.100.1); `none`: the NC uses the machine's libvirtd and guests get no network.",
  ),
  volumeEventsConsumer: def('KOALA_VOLUME_EVENTS_CONSUMER', 'clc-volumes', name, 'Durable JetStream consumer of storage (volume and snapshot) events (clouds sharing one NATS need distinct names).'),
  volumeAttachTimeoutMs: def(
    'KOALA_VOLUME_ATTACH_TIMEOUT_MS',
    '90000',
    int(60000, 3600000),
    'How long the CLC waits for a zone to attach or detach a volume (at least 60 s) before rolling the attachment back.',
  ),
  deletedVolumeRetentionMs: def('KOALA_DELETED_VOLUME_RETENTION_MS', '3600000', int(0, 30 * 86400000), 'How long deleted volumes stay visible in DescribeVolumes.'),
  metricsPort: def('KOALA_METRICS_PORT', '0', int(0, 65535), 'Prometheus `/metrics` port of a CC, NC or SC (each process its own); 0 = off. The CLC serves `/metrics` on its API port.'),
  metricsHost: def('KOALA_METRICS_HOST', '127.0.0.1', str, 'Address the metrics port of a CC, NC or SC listens on.'),
  metricsToken: def('KOALA_METRICS_TOKEN', '', optionalStr, 'Bearer token that lets a non-loopback client read `/metrics` (none: loopback only).'),
  volumeSweepMs: def('KOALA_VOLUME_SWEEP_MS', '5000', int(100, 3600000), 'How often the CLC releases volumes still attached to terminated instances (and deletes those marked DeleteOnTermination).'),
} as const;

export type KoalaConfig = { readonly [K in keyof typeof SCHEMA]: ReturnType<(typeof SCHEMA)[K]['parse']> };

/** Reads and validates every variable once. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): KoalaConfig {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(SCHEMA) as [string, VarSpec<unknown>][]) {
    const given = env[spec.env];
    const raw = given !== undefined ? given : typeof spec.default === 'function' ? spec.default(env) : spec.default;
    out[key] = raw === undefined ? undefined : spec.parse(raw, spec.env);
  }
  return Object.freeze(out) as KoalaConfig;
}
