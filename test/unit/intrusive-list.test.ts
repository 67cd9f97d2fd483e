import { describe, expect, it } from 'vitest';
import { IntrusiveList, type ListLinks } from '../../src/intrusive-list.js';

interface Item extends ListLinks<Item> {
  readonly name: string;
}

const item = (name: string): Item => ({ name, listOlder: undefined, listNewer: undefined });

function names(list: IntrusiveList<Item>): string[] {
  const seen: string[] = [];
  list.forEach((i) => seen.push(i.name));
  return seen;
}

describe('IntrusiveList', () => {
  it('holds what was added, newest first, and forgets each item as it is deleted', () => {
    const list = new IntrusiveList<Item>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(item) as [Item, Item, Item, Item];
    for (const i of [a, b, c, d]) list.add(i);
    expect(names(list)).toEqual(['d', 'c', 'b', 'a']);
    expect(list.size).toBe(4);
    expect(list.oldest).toBe(a);

    expect(list.delete(b)).toBe(true); // from the middle
    expect(list.delete(d)).toBe(true); // the newest
    expect(list.oldest).toBe(a);
    expect(list.delete(a)).toBe(true); // the oldest
    expect(names(list)).toEqual(['c']);
    expect(list.size).toBe(1);
    expect(list.oldest).toBe(c);
    // A deleted item points at nothing: it keeps no neighbour alive.
    for (const i of [a, b, d]) expect([i.listOlder, i.listNewer]).toEqual([undefined, undefined]);

    expect(list.delete(c)).toBe(true); // the only one
    expect(names(list)).toEqual([]);
    expect(list.size).toBe(0);
    expect(list.oldest).toBe(undefined);
    list.add(b);
    expect(list.oldest).toBe(b);
  });

  it('refuses to delete what it does not hold, twice or never added', () => {
    const list = new IntrusiveList<Item>();
    const a = item('a');
    const stranger = item('stranger');
    list.add(a);
    list.add(item('b'));
    expect(list.delete(a)).toBe(true);
    expect(list.delete(a)).toBe(false);
    expect(list.delete(stranger)).toBe(false);
    expect(names(list)).toEqual(['b']);
    expect(list.size).toBe(1);
  });

  it('lets a visit delete the item it is given', () => {
    const list = new IntrusiveList<Item>();
    for (const name of ['a', 'b', 'c', 'd', 'e']) list.add(item(name));
    const visited: string[] = [];
    list.forEach((i) => {
      visited.push(i.name);
      if (i.name !== 'c') list.delete(i);
    });
    expect(visited).toEqual(['e', 'd', 'c', 'b', 'a']);
    expect(names(list)).toEqual(['c']);
    expect(list.size).toBe(1);
  });

  it('takes an item back after it was deleted', () => {
    const list = new IntrusiveList<Item>();
    const a = item('a');
    list.add(a);
    list.add(item('b'));
    list.delete(a);
    list.add(a);
    expect(names(list)).toEqual(['a', 'b']);
  });
});
