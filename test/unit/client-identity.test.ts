// normaliseAddress: the peer address a client is counted as, for the forms uWS writes and the
// forms an address can otherwise take.
import { describe, expect, it } from 'vitest';
import { normaliseAddress } from '../../src/http/client-identity.js';

describe('normaliseAddress', () => {
  it('keeps an IPv4 address as it is', () => {
    expect(['127.0.0.1', '203.0.113.7'].map(normaliseAddress)).toEqual([
      '127.0.0.1',
      '203.0.113.7',
    ]);
  });

  it('counts an IPv6 address as its /64, whether written in full or compressed', () => {
    expect(
      [
        '2001:0db8:0000:0000:0000:0000:0000:0001',
        '2001:db8::1',
        '2001:db8::ffff:ffff:ffff:ffff',
        '2001:DB8:0:0:1:2:3:4',
      ].map(normaliseAddress),
    ).toEqual(Array(4).fill('2001:db8:0:0::/64'));
  });

  it('tells apart addresses whose /64s differ', () => {
    expect(['2001:db8:0:1::1', '2001:db8:0:2::1', 'fd00::2'].map(normaliseAddress)).toEqual([
      '2001:db8:0:1::/64',
      '2001:db8:0:2::/64',
      'fd00:0:0:0::/64',
    ]);
  });

  it('counts ::1 in full and compressed form as one client', () => {
    expect(['::1', '0000:0000:0000:0000:0000:0000:0000:0001'].map(normaliseAddress)).toEqual([
      '0:0:0:0::/64',
      '0:0:0:0::/64',
    ]);
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address, in every spelling', () => {
    expect(
      [
        '0000:0000:0000:0000:0000:ffff:7f00:0001', // what uWS writes on a dual-stack socket
        '::ffff:127.0.0.1',
        '::FFFF:7f00:1',
        '0:0:0:0:0:ffff:127.0.0.1',
      ].map(normaliseAddress),
    ).toEqual(Array(4).fill('127.0.0.1'));
  });

  it('drops a zone id', () => {
    expect(['fe80::fc:ff:fe00:1%eth0', 'fe80::1%2'].map(normaliseAddress)).toEqual([
      'fe80:0:0:0::/64',
      'fe80:0:0:0::/64',
    ]);
  });

  it('returns text that is not an address unchanged', () => {
    const notAddresses = [
      '',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8::',
      '12345::',
      'g::1',
      '::ffff:1.2.3',
      '::ffff:1.2.3.256',
      `${'0:'.repeat(30)}1`,
    ];
    expect(notAddresses.map(normaliseAddress)).toEqual(notAddresses);
  });

  it('takes linear time on a long hostile string', () => {
    const long = `${'1:'.repeat(100_000)}%${':'.repeat(100_000)}`;
    expect(normaliseAddress(long)).toBe(long);
  });
});
