import { spawnSync } from 'node:child_process';
import { parseXML } from '@aws-sdk/xml-builder';
import { renderResponse } from '@koala/ec2-query';
import { BUILT_IN_INSTANCE_TYPES } from './instance-types.table.js';
import { describeInstanceTypesXml, eucalyptusNamespace, wantsAwsShape } from './instance-type-view.js';

// boto 2's own parser (Debian's python3-boto): every <item> becomes an InstanceType.
const BOTO2_PARSE = `
import sys, json, boto.handler, boto.resultset, boto.ec2.instancetype
rs = boto.resultset.ResultSet([('item', boto.ec2.instancetype.InstanceType)])
boto.handler.XmlHandlerWrapper(rs, None).parseString(sys.stdin.read())
print(json.dumps([[t.name, t.cores, t.memory, t.disk] for t in rs]))
`;
// botocore's EC2 parser with the service model, as boto3 / aws-cli parse it.
const BOTOCORE_PARSE = `
import sys, json, botocore.session
from botocore.parsers import create_parser
shape = botocore.session.get_session().get_service_model('ec2').operation_model('DescribeInstanceTypes').output_shape
r = create_parser('ec2').parse({'body': sys.stdin.buffer.read(), 'headers': {}, 'status_code': 200}, shape)
print(json.dumps(r['InstanceTypes']))
`;
// namespace-aware reader as euca2ools (requestbuilder) and libcloud read Eucalyptus answers
const EUCA_PARSE = `
import sys, json, xml.etree.ElementTree as ET
ns = sys.argv[1]
root = ET.fromstring(sys.stdin.buffer.read())
out = []
for it in root.findall('{%s}instanceTypeDetails/{%s}item' % (ns, ns)):
    av = [[a.findtext('{%s}zoneName' % ns), a.findtext('{%s}available' % ns), a.findtext('{%s}max' % ns)] for a in it.findall('{%s}availability/{%s}item' % (ns, ns))]
    out.append([it.findtext('{%s}name' % ns), it.findtext('{%s}cpu' % ns), it.findtext('{%s}memory' % ns), it.findtext('{%s}disk' % ns), av])
print(json.dumps(out))
`;

function py(python: string, script: string, xml: string, ...args: string[]): any {
  const r = spawnSync(python, ['-c', script, ...args], { input: xml, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

const types = BUILT_IN_INSTANCE_TYPES.slice(0, 3);
const small = ['t1.micro', '1', '128', '1'];

describe('DescribeInstanceTypes answer (AWS and Eucalyptus shapes)', () => {
  it('chooses the shape and namespace by the request version', () => {
    expect(wantsAwsShape('2016-11-15')).toBe(true);
    expect(wantsAwsShape('2014-10-01')).toBe(false);
    expect(wantsAwsShape('3.3.0')).toBe(false);
    expect(eucalyptusNamespace('3.3.0')).toBe('http://msgs.eucalyptus.com/3.3.0');
    expect(eucalyptusNamespace('2016-11-15')).toBe('http://msgs.eucalyptus.com/4.4.5');
  });

  it('boto 2 (version 2014-10-01) reads each type once with name, cpu, memory, disk', () => {
    const xml = renderResponse('DescribeInstanceTypes', '2014-10-01', 'r', describeInstanceTypesXml(types, '2014-10-01'));
    expect(py('/usr/bin/python3', BOTO2_PARSE, xml)).toEqual([small, ['m1.small', '1', '256', '2'], ['m1.medium', '1', '512', '5']]);
    expect(py('python3', EUCA_PARSE, xml, 'http://msgs.eucalyptus.com/4.4.5')[0]).toEqual([...small, []]);
  });

  it('an AWS version carries both: SDKs read InstanceTypes, Eucalyptus readers instanceTypeDetails with availability', () => {
    const availability = new Map([['t1.micro', [{ zoneName: 'z1', available: 3, max: 8 }]]]);
    const xml = renderResponse('DescribeInstanceTypes', '2016-11-15', 'r', describeInstanceTypesXml(types, '2016-11-15', availability));
    const sdk = py('python3', BOTOCORE_PARSE, xml);
    expect(sdk.map((t: any) => t.InstanceType)).toEqual(['t1.micro', 'm1.small', 'm1.medium']);
    expect(sdk[2]).toMatchObject({ VCpuInfo: { DefaultVCpus: 1 }, MemoryInfo: { SizeInMiB: 512 }, SupportedRootDeviceTypes: ['instance-store', 'ebs'] });
    expect(sdk[2].InstanceStorageInfo.Disks).toHaveLength(2);
    const v3 = parseXML(xml) as any;
    expect(v3.DescribeInstanceTypesResponse.instanceTypeSet.item[0].supportedUsageClasses.item).toBe('on-demand');
    const euca = py('python3', EUCA_PARSE, xml, 'http://msgs.eucalyptus.com/4.4.5');
    expect(euca[0]).toEqual([...small, [['z1', '3', '8']]]);
    expect(euca[1]![4]).toEqual([]);
  });
});
