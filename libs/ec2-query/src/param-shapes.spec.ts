import { checkParamShapes, CompiledShapes, FILTER_SHAPES, shapeOf } from './param-shapes.js';
import { Params, type ParamReadRecorder } from './params.js';

const shapes = new CompiledShapes(['KeyName.N', 'KeyPairId.N', ...FILTER_SHAPES, 'DryRun', 'InstanceId', 'InstanceId.N']);
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return `${(e as { code: string }).code}: ${(e as Error).message}`;
  }
  return 'ok';
};

describe('checkParamShapes', () => {
  it('accepts declared names and the common ones, unchanged', () => {
    const m = { Action: 'X', Version: 'v', 'X-Amz-Date': 'd', 'KeyName.1': 'a', 'KeyName.20': 'b', 'Filter.3.Name': 'n', 'Filter.3.Value.7': 'v', DryRun: 'true', InstanceId: 'i' };
    expect(checkParamShapes(m, shapes)).toBe(m);
  });

  it('reads a bare list name as its first member', () => {
    expect({ ...checkParamShapes({ KeyName: 'probe-b', 'Filter.1.Name': 'x', 'Filter.1.Value': 'y' }, shapes) }).toEqual({ 'KeyName.1': 'probe-b', 'Filter.1.Name': 'x', 'Filter.1.Value.1': 'y' });
    // both a single and a list form declared: the bare name stays itself
    expect({ ...checkParamShapes({ InstanceId: 'i-1' }, shapes) }).toEqual({ InstanceId: 'i-1' });
    expect(code(() => checkParamShapes({ KeyName: 'a', 'KeyName.1': 'b' }, shapes))).toMatch(/^InvalidParameterCombination/);
  });

  it('refuses any other name with UnknownParameter', () => {
    for (const n of ['Bogus', 'keyname.1', 'KeyName.x', 'KeyName.1.Extra', 'Filter.1', 'Filter.Name', 'Filter.1.Value.1.x', 'DryRun.1', 'KeyName.', '.KeyName', '']) {
      expect(code(() => checkParamShapes({ [n]: 'x' }, shapes))).toBe(`UnknownParameter: The parameter ${n} is not recognized`);
    }
  });

  it('refuses malformed declarations', () => {
    expect(() => new CompiledShapes(['Filter..Name'])).toThrow();
    expect(() => new CompiledShapes(['Filter.1.Name'])).toThrow();
  });

  it('tells covered prefixes and declared shapes apart', () => {
    expect(shapes.covers('Filter.N')).toBe(true);
    expect(shapes.covers('Tag.N')).toBe(false);
    expect(shapes.declares('Filter.N.Name')).toBe(true);
    expect(shapes.declares('Filter.N')).toBe(false);
    expect(shapeOf('Filter.12.Value.3')).toBe('Filter.N.Value.N');
  });
});

describe('Params read recorder', () => {
  it('records leaf and structural reads as shapes, also from scoped readers', () => {
    const seen: string[] = [];
    const rec: ParamReadRecorder = (s, prefix) => seen.push(`${prefix ? '>' : ''}${s}`);
    const p = new Params({ 'Filter.2.Name': 'a', 'Filter.2.Value.1': 'b', 'B.1.Ebs.Iops': '3' }, '', rec);
    p.str('DryRun');
    p.list('KeyName');
    for (const m of p.members('Filter')) m.str('Name');
    p.members('B')[0]!.child('Ebs')!.int('Iops');
    expect(seen).toEqual(['DryRun', '>KeyName.N', '>Filter.N', 'Filter.N.Name', '>B.N', '>B.N.Ebs', 'B.N.Ebs.Iops']);
  });
});
