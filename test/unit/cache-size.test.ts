import { describe, expect, test } from 'vitest';
import { CACHE_SIZE_ENV, CacheSizeConfigError, maxCachedWorkflows } from '../../worker/cache-size.js';

describe('worker cache size (--max-cached-workflows, AB_UPGRADE_MAX_CACHED_WORKFLOWS)', () => {
  test('unset, or the variable empty: the SDK sizes the cache', () => {
    expect(maxCachedWorkflows(undefined, {})).toBeUndefined();
    expect(maxCachedWorkflows(undefined, { [CACHE_SIZE_ENV]: ' ' })).toBeUndefined();
  });

  test('the flag wins over the variable', () => {
    expect(maxCachedWorkflows('300', { [CACHE_SIZE_ENV]: '50' })).toBe(300);
    expect(maxCachedWorkflows(undefined, { [CACHE_SIZE_ENV]: ' 250 ' })).toBe(250);
  });

  test.each([
    ['abc', '--max-cached-workflows', 'whole number'],
    ['1.5', '--max-cached-workflows', 'whole number'],
    ['-3', '--max-cached-workflows', 'whole number'],
    ['0', '--max-cached-workflows', 'between 2 and 100000'],
    ['1', '--max-cached-workflows', 'between 2 and 100000'],
    ['', '--max-cached-workflows', 'whole number'],
  ])('flag %j is refused, naming the flag', (value, source, message) => {
    expect(() => maxCachedWorkflows(value, {})).toThrow(CacheSizeConfigError);
    expect(() => maxCachedWorkflows(value, {})).toThrow(new RegExp(`^${source}: .*${message}.*\\(got ${JSON.stringify(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`));
  });

  test('a bad variable is refused, naming the variable', () => {
    expect(() => maxCachedWorkflows(undefined, { [CACHE_SIZE_ENV]: '200000' })).toThrow(`${CACHE_SIZE_ENV}: must be between 2 and 100000 (got "200000")`);
  });
});
