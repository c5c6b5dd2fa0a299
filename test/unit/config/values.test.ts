import { SIZE_UNITS, TIME_UNITS, formatWithUnits, parseBool, parseNumber, rint } from '../../../agent/config/values';

function num(text: string, units: typeof TIME_UNITS | null): number | string {
  const r = parseNumber(text, units);
  return r.ok ? r.value : r.reason;
}

// The expected numbers are what PostgreSQL 15 reports for statement_timeout (milliseconds)
// and log_parameter_max_length (bytes) set to the same text.
describe('time values (base unit: milliseconds)', () => {
  it.each([
    ['1000', 1000],
    ['100ms', 100],
    [' 100 ms ', 100],
    ['1s', 1000],
    ['.5s', 500],
    ['5 min', 300_000],
    ['1.5min', 90_000],
    ['0.0015min', 0], // rounded to whole seconds, the next smaller unit
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1500us', 2],
    ['2500us', 2], // halves round to even, like C's rint
    ['500us', 0],
    ['1.5', 2],
    ['2.5', 2],
    ['3.5', 4],
    ['1e3', 1000],
    ['010', 8], // octal, as strtol reads it
    ['0x10', 16],
    ['-0', 0],
  ])('%s is %d ms', (text, ms) => {
    expect(num(text, TIME_UNITS)).toBe(ms);
  });

  it.each([
    ['100 MS', 'unit'], // units are case-sensitive
    ['100msx', 'unit'],
    ['1 sec', 'unit'],
    ['abc', 'syntax'],
    ['', 'syntax'],
    [' .5', 'syntax'],
  ])('rejects %j (%s)', (text, reason) => {
    expect(num(text, TIME_UNITS)).toBe(reason);
  });
});

describe('size values (base unit: bytes, 1024-based)', () => {
  it.each([
    ['3B', 3],
    ['1.5kB', 1536],
    ['1.0001kB', 1024],
    ['1MB', 1_048_576],
    ['0.5MB', 524_288],
    ['64MB', 67_108_864],
    ['1 GB', 1_073_741_824],
    ['1TB', 1024 ** 4],
    ['4096', 4096],
  ])('%s is %d bytes', (text, bytes) => {
    expect(num(text, SIZE_UNITS)).toBe(bytes);
  });

  it('rejects lower-case and unknown units', () => {
    expect(num('1kb', SIZE_UNITS)).toBe('unit');
    expect(num('1KB', SIZE_UNITS)).toBe('unit');
    expect(num('1MiB', SIZE_UNITS)).toBe('unit');
  });
});

describe('plain numbers', () => {
  it('reject any unit', () => {
    expect(num('100', null)).toBe(100);
    expect(num('100ms', null)).toBe('unexpected-unit');
    expect(num('1e9', null)).toBe(1e9);
  });
});

describe('booleans', () => {
  // PostgreSQL 15's answers for log_checkpoints = '<text>'.
  it.each([
    ['on', true],
    ['On', true],
    ['of', false],
    ['off', false],
    ['TRUE', true],
    ['tr', true],
    ['t', true],
    ['FA', false],
    ['yes', true],
    ['y', true],
    ['n', false],
    ['no', false],
    ['1', true],
    ['0', false],
  ])('%s is %s', (text, value) => {
    expect(parseBool(text)).toBe(value);
  });

  it.each(['o', 'onn', 'offf', ' on', '10', 'truee', 'enabled', ''])('rejects %j', (text) => {
    expect(parseBool(text)).toBeNull();
  });
});

describe('display form', () => {
  it('uses the largest unit that divides the value, as SHOW does', () => {
    expect(formatWithUnits(1000, TIME_UNITS)).toBe('1s');
    expect(formatWithUnits(1500, TIME_UNITS)).toBe('1500ms');
    expect(formatWithUnits(300_000, TIME_UNITS)).toBe('5min');
    expect(formatWithUnits(0, TIME_UNITS)).toBe('0');
    expect(formatWithUnits(64 * 1024 * 1024, SIZE_UNITS)).toBe('64MB');
    expect(formatWithUnits(1536, SIZE_UNITS)).toBe('1536B');
  });

  it('round-trips through the parser', () => {
    for (const ms of [1, 10, 999, 1000, 60_000, 90_000, 86_400_000]) {
      expect(num(formatWithUnits(ms, TIME_UNITS), TIME_UNITS)).toBe(ms);
    }
  });

  it('rint rounds halves to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6].map(rint)).toEqual([0, 2, 2, 0, -2, 2, 3]);
  });
});
