import { parseCapabilitiesXml } from './index.js';

describe('parseCapabilitiesXml', () => {
  it('reads host arch, CPU count from NUMA cells and guest domain types', () => {
    const caps = parseCapabilitiesXml(`<capabilities>
      <host><uuid>9f46fdcf-45fd-4277-a80a-f4f9ac677b35</uuid>
        <cpu><arch>x86_64</arch><model>kvm64</model><topology sockets='1' dies='1' cores='2' threads='1'/><feature name='vme'/></cpu>
        <topology><cells num='1'><cell id='0'><memory unit='KiB'>5466324</memory>
          <cpus num='2'><cpu id='0'/><cpu id='1'/></cpus></cell></cells></topology>
      </host>
      <guest><os_type>hvm</os_type><arch name='i686'><wordsize>32</wordsize><emulator>/usr/bin/qemu-system-i386</emulator>
        <machine maxCpus='255'>pc</machine><domain type='qemu'/><domain type='kvm'/></arch><features><acpi default='on' toggle='yes'/></features></guest>
      <guest><os_type>hvm</os_type><arch name='x86_64'><wordsize>64</wordsize><emulator>/usr/bin/qemu-system-x86_64</emulator>
        <domain type='qemu'/><domain type='kvm'><emulator>/usr/bin/kvm</emulator></domain></arch></guest>
    </capabilities>`);
    expect(caps).toEqual({
      hostUuid: '9f46fdcf-45fd-4277-a80a-f4f9ac677b35',
      hostArch: 'x86_64',
      hostCpuCount: 2,
      hostMemoryBytes: 5466324 * 1024,
      guests: [
        { osType: 'hvm', arch: 'i686', wordsize: 32, emulator: '/usr/bin/qemu-system-i386', domainTypes: ['qemu', 'kvm'] },
        { osType: 'hvm', arch: 'x86_64', wordsize: 64, emulator: '/usr/bin/qemu-system-x86_64', domainTypes: ['qemu', 'kvm'] },
      ],
    });
  });

  it('falls back to the CPU topology, and leaves the count out when unknown', () => {
    expect(parseCapabilitiesXml(`<capabilities><host><cpu><arch>aarch64</arch><topology sockets='2' cores='4' threads='2'/></cpu></host></capabilities>`)).toEqual({
      hostArch: 'aarch64',
      hostCpuCount: 16,
      guests: [],
    });
    expect(parseCapabilitiesXml(`<capabilities><host><cpu><arch>x86_64</arch></cpu></host></capabilities>`)).toEqual({ hostArch: 'x86_64', guests: [] });
  });

  it('rejects other documents', () => {
    expect(() => parseCapabilitiesXml('<domain/>')).toThrow(/expected a <capabilities> document/);
  });
});
