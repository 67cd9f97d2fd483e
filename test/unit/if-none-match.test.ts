import { describe, expect, it } from 'vitest';
import { ifNoneMatchIncludes } from '../../src/http/if-none-match.js';

const etag = '"abc"';

describe('ifNoneMatchIncludes', () => {
  it.each([
    ['the tag alone', '"abc"', true],
    ['the tag in a list', '"x", "abc"', true],
    ['the tag in a list without spaces', '"x","abc"', true],
    ['the tag after tabs and empty list members', '\t, ,"abc"', true],
    ['the weak form of the tag (weak comparison)', 'W/"abc"', true],
    ['a star', '*', true],
    ['a star with spaces around it', '  * ', true],
    ['an empty value', '', false],
    ['another tag', '"abd"', false],
    ['the tag without quotes', 'abc', false],
    ['a longer tag holding the tag', '"abcd"', false],
    ['a lower-case weak prefix', 'w/"abc"', false],
    ['a list broken before the tag', '"x" junk, "abc"', false],
    ['an unterminated tag', '"abc', false],
    ['a star inside a list', '"x", *', false],
  ])('answers %s with %s', (_name, value, expected) => {
    expect(ifNoneMatchIncludes(value, etag)).toBe(expected);
  });
});
