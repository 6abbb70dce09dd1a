import { spawnSync } from 'node:child_process';
import { Ec2Error } from './errors.js';
import { renderError, renderResponse, renderXmlBody, XmlNamespaced } from './xml.js';

// Parses our XML with botocore's own EC2 response parser and the EC2 service model —
// exactly what aws-cli / boto3 do with a response.
const BOTOCORE_PARSE = `
import sys, json, datetime, botocore.session
from botocore.parsers import create_parser
op, status = sys.argv[1], int(sys.argv[2])
body = sys.stdin.buffer.read()
model = botocore.session.get_session().get_service_model('ec2')
shape = model.operation_model(op).output_shape
parser = create_parser('ec2')
r = parser.parse({'body': body, 'headers': {}, 'status_code': status}, shape)
r.pop('ResponseMetadata', None) if status == 200 else None
def d(o):
    if isinstance(o, datetime.datetime): return o.isoformat()
    if isinstance(o, bytes): return o.decode()
    raise TypeError(repr(o))
print(json.dumps(r, default=d))
`;

function botocoreParse(op: string, xml: string, status = 200): any {
  const r = spawnSync('python3', ['-c', BOTOCORE_PARSE, op, String(status)], { input: xml, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

describe('renderResponse', () => {
  it('renders the EC2 envelope, items, booleans, dates and escaping', () => {
    const xml = renderResponse('DescribeKeyPairs', undefined, 'req-1', {
      keySet: [{ keyPairId: 'key-0123456789abcdef0', keyName: 'a<b>&"\'', keyFingerprint: 'ff:00', tagSet: [], createTime: new Date(Date.UTC(2026, 10, 26, 3, 24)) }, null],
      nothing: undefined,
      flag: false,
    });
    expect(xml).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><DescribeKeyPairsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">' +
        '<requestId>req-1</requestId><keySet><item><keyPairId>key-0123456789abcdef0</keyPairId>' +
        '<keyName>a&lt;b&gt;&amp;&quot;&apos;</keyName><keyFingerprint>ff:00</keyFingerprint><tagSet/>' +
        '<createTime>2026-11-26T03:24:00.000Z</createTime></item></keySet><flag>false</flag></DescribeKeyPairsResponse>',
    );
  });

  it('uses the given version and replaces characters illegal in XML', () => {
    const xml = renderResponse('X', '2014-06-15', 'r', { a: 'x\u0001y', n: 3, b: Buffer.from('hi') });
    expect(xml).toContain('xmlns="http://ec2.amazonaws.com/doc/2014-06-15/"');
    expect(xml).toContain('<a>x\uFFFDy</a><n>3</n><b>aGk=</b>');
  });

  it('refuses bad element names', () => {
    expect(() => renderXmlBody({ 'bad name': 1 })).toThrow();
    expect(() => renderResponse('Bad<Action', undefined, 'r')).toThrow();
  });

  it('is parsed by botocore: DescribeInstances (nested lists, dates, booleans, ints)', () => {
    const xml = renderResponse('DescribeInstances', undefined, 'rid-42', {
      reservationSet: [
        {
          reservationId: 'r-0123456789abcdef0',
          ownerId: '000000000001',
          groupSet: [],
          instancesSet: [
            {
              instanceId: 'i-0123456789abcdef0',
              imageId: 'emi-0123456789abcdef0',
              instanceState: { code: 16, name: 'running' },
              launchTime: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)),
              ebsOptimized: false,
              tagSet: [{ key: 'Name', value: 'web & db' }],
              groupSet: [{ groupId: 'sg-0123456789abcdef0', groupName: 'default' }],
            },
          ],
        },
      ],
      nextToken: 'tok',
    });
    const out = botocoreParse('DescribeInstances', xml);
    const inst = out.Reservations[0].Instances[0];
    expect(out.NextToken).toBe('tok');
    expect(out.Reservations[0].ReservationId).toBe('r-0123456789abcdef0');
    expect(out.Reservations[0].Groups).toEqual([]);
    expect(inst.InstanceId).toBe('i-0123456789abcdef0');
    expect(inst.State).toEqual({ Code: 16, Name: 'running' });
    expect(inst.LaunchTime).toBe('2026-01-02T03:04:05.006000+00:00');
    expect(inst.EbsOptimized).toBe(false);
    expect(inst.Tags).toEqual([{ Key: 'Name', Value: 'web & db' }]);
    expect(inst.SecurityGroups).toEqual([{ GroupId: 'sg-0123456789abcdef0', GroupName: 'default' }]);
  });

  it('is parsed by botocore: CreateKeyPair, DescribeSecurityGroups, return booleans', () => {
    const kp = botocoreParse(
      'CreateKeyPair',
      renderResponse('CreateKeyPair', undefined, 'r', {
        keyName: 'k',
        keyFingerprint: 'aa:bb',
        keyMaterial: '-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----',
        keyPairId: 'key-0123456789abcdef0',
      }),
    );
    expect(kp).toEqual({
      KeyName: 'k',
      KeyFingerprint: 'aa:bb',
      KeyMaterial: '-----BEGIN RSA PRIVATE KEY-----\nMII\n-----END RSA PRIVATE KEY-----',
      KeyPairId: 'key-0123456789abcdef0',
    });
    const sg = botocoreParse(
      'DescribeSecurityGroups',
      renderResponse('DescribeSecurityGroups', undefined, 'r', {
        securityGroupInfo: [
          {
            groupId: 'sg-1',
            groupName: 'web',
            groupDescription: 'd',
            ipPermissions: [{ ipProtocol: 'tcp', fromPort: 22, toPort: 22, ipRanges: [{ cidrIp: '0.0.0.0/0' }], groups: [] }],
            ipPermissionsEgress: [],
          },
        ],
      }),
    );
    expect(sg.SecurityGroups[0].IpPermissions).toEqual([{ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '0.0.0.0/0' }], UserIdGroupPairs: [] }]);
    expect(sg.SecurityGroups[0].Description).toBe('d');
    const del = botocoreParse('DeleteSecurityGroup', renderResponse('DeleteSecurityGroup', undefined, 'r', { return: true, groupId: 'sg-1' }));
    expect(del.Return).toBe(true);
  });

  it('renders elements in another namespace (scalar, object, list, empty list)', () => {
    const ns = 'http://msgs.eucalyptus.com/4.4.5';
    expect(renderXmlBody({ name: new XmlNamespaced(ns, 'a<b'), x: new XmlNamespaced(ns, undefined) })).toBe(`<name xmlns="${ns}">a&lt;b</name>`);
    expect(renderXmlBody({ d: new XmlNamespaced(ns, [{ cpu: 1 }]), e: new XmlNamespaced(ns, []), o: new XmlNamespaced(ns, { k: true }) })).toBe(
      `<d xmlns="${ns}"><item><cpu>1</cpu></item></d><e xmlns="${ns}"/><o xmlns="${ns}"><k>true</k></o>`,
    );
  });
});

describe('renderError', () => {
  it('renders Ec2Error with its status and code, parsed by botocore', () => {
    const r = renderError(Ec2Error.notFound('InvalidInstanceID.NotFound', ['i-1', 'i-2']), 'rid-7');
    expect(r.status).toBe(400);
    expect(r.code).toBe('InvalidInstanceID.NotFound');
    expect(r.body).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>' +
        '<Message>The instance ID &apos;i-1, i-2&apos; does not exist</Message></Error></Errors><RequestID>rid-7</RequestID></Response>',
    );
    const parsed = botocoreParse('DescribeInstances', r.body, 400);
    expect(parsed.Error).toEqual({ Code: 'InvalidInstanceID.NotFound', Message: "The instance ID 'i-1, i-2' does not exist" });
    expect(parsed.ResponseMetadata.RequestId).toBe('rid-7');
  });

  it('hides unknown exceptions behind InternalError 500', () => {
    const r = renderError(new Error('password=hunter2 at /secret/path'), 'rid');
    expect(r.status).toBe(500);
    expect(r.code).toBe('InternalError');
    expect(r.body).not.toContain('hunter2');
    expect(renderError('string thrown', 'rid').status).toBe(500);
  });

  it('uses AWS statuses', () => {
    expect(renderError(Ec2Error.dryRun(), 'r').status).toBe(412);
    expect(renderError(Ec2Error.unauthorized(), 'r').status).toBe(403);
    expect(renderError(Ec2Error.insufficientCapacity('m1.small', 'zone-1'), 'r').status).toBe(500);
    expect(renderError(Ec2Error.of('AuthFailure', 'x'), 'r').status).toBe(401);
    expect(renderError(Ec2Error.of('SignatureDoesNotMatch', 'x'), 'r').status).toBe(403);
    expect(renderError(Ec2Error.of('RequestLimitExceeded', 'x'), 'r').status).toBe(503);
    expect(renderError(Ec2Error.of('ServiceUnavailable', 'x'), 'r').status).toBe(503);
    expect(renderError(Ec2Error.of('InvalidGroup.InUse', 'x'), 'r').status).toBe(400);
  });
});
