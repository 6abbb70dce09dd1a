import pg from 'pg';
import { DescribeAvailabilityZonesCommand, DescribeImagesCommand, DescribeInstancesCommand, DescribeKeyPairsCommand, DescribeRegionsCommand, DescribeSecurityGroupsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { startCloud } from '../test/support/cloud.js';
it('queries per action', async () => {
  const cloud = await startCloud();
  const ec2 = cloud.ec2();
  const log: string[] = [];
  const orig = pg.Client.prototype.query;
  (pg.Client.prototype as any).query = function (this: unknown, q: any, ...rest: unknown[]) { log.push(typeof q === 'string' ? q : q?.text ?? String(q)); return (orig as any).call(this, q, ...rest); };
  const out: string[] = [];
  for (const [n, c] of [['DescribeInstances', new DescribeInstancesCommand({})], ['DescribeVolumes', new DescribeVolumesCommand({})], ['DescribeSecurityGroups', new DescribeSecurityGroupsCommand({})], ['DescribeKeyPairs', new DescribeKeyPairsCommand({})], ['DescribeImages', new DescribeImagesCommand({})], ['DescribeAvailabilityZones', new DescribeAvailabilityZonesCommand({})], ['DescribeRegions', new DescribeRegionsCommand({})]] as const) {
    await ec2.send(c as never);
    log.length = 0;
    await ec2.send(c as never);
    out.push(`== ${n}: ${log.length}\n${log.map((s) => '   ' + s.slice(0, 300)).join('\n')}`);
  }
  (pg.Client.prototype as any).query = orig;
  process.stdout.write(out.join('\n') + '\n');
  await cloud.close();
}, 120_000);
