import { describe, expect, it } from 'vitest';
import { budgetExceeded, failureBudget, planWaves, waveSizes } from '../../lib/waves.js';

describe('waveSizes (Ansible serial semantics)', () => {
  it('entries in order, the last one repeating', () => {
    expect(waveSizes(10, [1, 5, '20%'])).toEqual([1, 5, 2, 2]);
    expect(waveSizes(5, [1, '40%'])).toEqual([1, 2, 2]);
    expect(waveSizes(4, [10])).toEqual([4]);
    expect(waveSizes(3, [1])).toEqual([1, 1, 1]);
  });
  it('percentages of the total round up, at least 1, without float noise', () => {
    expect(waveSizes(7, ['10%'])).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(waveSizes(3, ['33.3%'])).toEqual([1, 1, 1]);
    expect(waveSizes(10, ['30%'])).toEqual([3, 3, 3, 1]);
    expect(waveSizes(100, ['0.5%', '100%'])).toEqual([1, 99]);
  });
  it('a subset (retry) is sized by the percentages of all hosts', () => {
    expect(waveSizes(3, ['50%'], 10)).toEqual([3]);
    expect(waveSizes(3, [1, '10%'], 10)).toEqual([1, 1, 1]);
    expect(waveSizes(0, [1])).toEqual([]);
  });
  it('planWaves cuts the hosts in order', () => {
    expect(planWaves(['a', 'b', 'c', 'd', 'e'], [1, 2])).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
  });
});

describe('failure budget', () => {
  it('a number is a count; a percentage of all hosts rounds down', () => {
    expect(failureBudget(2, 100)).toBe(2);
    expect(failureBudget('10%', 15)).toBe(1);
    expect(failureBudget('20%', 5)).toBe(1);
    expect(failureBudget('10%', 9)).toBe(0);
    expect(failureBudget('0%', 10)).toBe(0);
    expect(failureBudget('100%', 3)).toBe(3);
  });
  it('exceeded only when more hosts failed than it allows', () => {
    expect(budgetExceeded(1, 1)).toBe(false);
    expect(budgetExceeded(2, 1)).toBe(true);
    expect(budgetExceeded(1, 0)).toBe(true);
    expect(budgetExceeded(0, 0)).toBe(false);
  });
});
