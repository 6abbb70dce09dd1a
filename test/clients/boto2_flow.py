"""One user's session with boto 2 (Debian's python3-boto 2.49), as Eucalyptus users ran it.

argv: endpoint-url zone image-id v4|v2 name-suffix. Prints one JSON object of what it saw.
boto 2 signs EC2 with SigV4 (scope derived from the host: 127.0.0.1 gives 0/127); `v2` uses
the SigV2 query signer that boto 2 used for EC2 before 2.3x (capability 'ec2').
"""
import json
import sys
import time
from urllib.parse import urlparse

import boto
from boto.ec2.connection import EC2Connection
from boto.ec2.regioninfo import RegionInfo
from boto.exception import EC2ResponseError

url, zone, image_id, sig, sfx = sys.argv[1:6]
u = urlparse(url)


class SigV2Connection(EC2Connection):
    def _required_auth_capability(self):
        return ['ec2']


Conn = EC2Connection if sig == 'v4' else SigV2Connection
# EC2Connection ignores `host=`: it connects to region.endpoint (ec2.us-east-1.amazonaws.com by
# default), so the endpoint goes in a RegionInfo, as Eucalyptus' own instructions had it.
region = RegionInfo(name='koala-1', endpoint=u.hostname)
conn = Conn(region=region, port=u.port, path='/', is_secure=False)
if conn.host != u.hostname or not u.hostname.startswith('127.'):
    raise SystemExit('refusing to talk to anything but the loopback endpoint: %r' % conn.host)
out = {'boto': boto.__version__, 'auth': type(conn._auth_handler).__name__}
if sig == 'v4':  # the credential scope boto 2 signs with: <region>/<service> from the host name
    h = conn._auth_handler
    out['scope'] = [h.determine_region_name(conn.host), h.determine_service_name(conn.host)]


def wait(what, probe, timeout=30):
    deadline = time.time() + timeout
    while True:
        v = probe()
        if v:
            return v
        if time.time() > deadline:
            raise RuntimeError('timed out waiting for ' + what)
        time.sleep(0.2)


def instance(iid):
    return conn.get_only_instances(instance_ids=[iid])[0]


def error_code(fn):
    try:
        fn()
    except EC2ResponseError as e:
        return e.error_code
    return None


out['regions'] = [r.name for r in conn.get_all_regions()]
out['zones'] = [(z.name, z.state) for z in conn.get_all_zones()]
out['types'] = sorted((t.name, t.cores, t.memory, t.disk) for t in conn.get_all_instance_types())
img = conn.get_all_images(image_ids=[image_id])[0]
out['image'] = [img.id, img.name, img.state, img.root_device_name]

kp = conn.create_key_pair('b2-' + sfx)
out['key'] = [kp.name, kp.material.splitlines()[0], kp.fingerprint is not None]
out['keys'] = [k.name for k in conn.get_all_key_pairs(keynames=['b2-' + sfx])]

sg = conn.create_security_group('b2-' + sfx, 'boto 2 group')
sg.authorize(ip_protocol='tcp', from_port=22, to_port=22, cidr_ip='10.0.0.0/8')
g = conn.get_all_security_groups(groupnames=['b2-' + sfx])[0]
out['group'] = [g.name, g.description, [(r.ip_protocol, r.from_port, r.to_port, [str(c) for c in r.grants]) for r in g.rules]]
out['dup'] = error_code(lambda: sg.authorize(ip_protocol='tcp', from_port=22, to_port=22, cidr_ip='10.0.0.0/8'))

res = conn.run_instances(image_id, instance_type='m1.small', key_name='b2-' + sfx, security_groups=['b2-' + sfx], placement=zone, user_data='hello from boto 2')
iid = res.instances[0].id
conn.create_tags([iid], {'Name': 'b2-' + sfx, 'by': 'boto2'})
wait('running', lambda: instance(iid).state == 'running')
i = instance(iid)
out['instance'] = [i.state, i.instance_type, i.placement, i.key_name, [gr.name for gr in i.groups], i.tags.get('by'), i.image_id]
out['tags'] = sorted((t.name, t.value) for t in conn.get_all_tags(filters={'resource-id': iid}))
conn.delete_tags([iid], ['by'])
out['tags_after'] = sorted(t.name for t in conn.get_all_tags(filters={'resource-id': iid}))
out['filtered'] = [x.id for x in conn.get_only_instances(filters={'tag:Name': 'b2-' + sfx})]
co = conn.get_console_output(iid)
out['console'] = [co.instance_id, co.output is not None]
out['reboot'] = conn.reboot_instances([iid])

vol = conn.create_volume(1, zone)
wait('volume available', lambda: vol.update() == 'available')
conn.attach_volume(vol.id, iid, '/dev/sdf')
wait('attached', lambda: vol.update() and vol.attachment_state() == 'attached')
out['attached_running'] = [vol.status, vol.attach_data.instance_id, vol.attach_data.device]
conn.detach_volume(vol.id)
wait('detached', lambda: vol.update() == 'available')

conn.stop_instances([iid])
wait('stopped', lambda: instance(iid).state == 'stopped')
conn.attach_volume(vol.id, iid, '/dev/sdg')
wait('attached to stopped', lambda: vol.update() and vol.attachment_state() == 'attached')
out['attached_stopped'] = [instance(iid).state, vol.status, vol.attach_data.instance_id, vol.attach_data.device]
conn.start_instances([iid])
wait('running again', lambda: instance(iid).state == 'running')
conn.detach_volume(vol.id)
wait('detached again', lambda: vol.update() == 'available')

snap = conn.create_snapshot(vol.id, 'boto 2 snapshot')
wait('snapshot completed', lambda: snap.update() and snap.status == 'completed')
out['snapshot'] = [snap.status, snap.volume_id == vol.id, snap.description, snap.volume_size]
restored = conn.create_volume(1, zone, snapshot=snap.id)
wait('restored available', lambda: restored.update() == 'available')
out['restored'] = [restored.status, restored.snapshot_id == snap.id, restored.size]
conn.delete_volume(restored.id)
conn.delete_snapshot(snap.id)
wait('snapshot gone', lambda: not conn.get_all_snapshots(filters={'snapshot-id': snap.id}))

addr = conn.allocate_address()
out['address'] = [addr.public_ip in [a.public_ip for a in conn.get_all_addresses()]]
out['released'] = conn.release_address(public_ip=addr.public_ip)

conn.terminate_instances([iid])
wait('terminated', lambda: instance(iid).state == 'terminated')
out['terminated'] = instance(iid).state
conn.delete_volume(vol.id)
sg.revoke(ip_protocol='tcp', from_port=22, to_port=22, cidr_ip='10.0.0.0/8')
out['group_deleted'] = conn.delete_security_group(group_id=sg.id)
conn.delete_key_pair('b2-' + sfx)
out['missing_key'] = error_code(lambda: conn.delete_security_group(group_id='sg-00000000000000000'))
print(json.dumps(out))
