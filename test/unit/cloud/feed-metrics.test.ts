/**
 * `ecsops_change_feed_read_age_seconds{region,feed}` (src/cloud/metrics.ts): the fleet view reports
 * when each change-feed read started; the gauge gives its age at scrape time, per region and feed,
 * and is registered once per registry.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { changeFeedMetrics } from '../../../src/cloud/metrics.js';

const NAME = 'ecsops_change_feed_read_age_seconds';

async function values(registry: Registry): Promise<Array<[string, string, number]>> {
  const metric = registry.getSingleMetric(NAME);
  if (!metric) throw new Error(`${NAME} not registered`);
  return (await metric.get()).values
    .map((v) => [String(v.labels.region), String(v.labels.feed), v.value] as [string, string, number])
    .sort();
}

describe('changeFeedMetrics', () => {
  it('reports the age of the newest read per region and feed at scrape time', async () => {
    let now = 1_000_000;
    const registry = new Registry();
    const m = changeFeedMetrics(registry, () => now);
    expect(await values(registry)).toEqual([]);
    m.observeFeedRead('cn-hangzhou', 'packages', 1_000_000);
    m.observeFeedRead('cn-hangzhou', 'actiontrail', 990_000);
    m.observeFeedRead('ap-southeast-1', 'patches', 400_000);
    now = 1_030_000;
    expect(await values(registry)).toEqual([
      ['ap-southeast-1', 'patches', 630],
      ['cn-hangzhou', 'actiontrail', 40],
      ['cn-hangzhou', 'packages', 30],
    ]);
    m.observeFeedRead('cn-hangzhou', 'packages', 1_020_000);
    m.observeFeedRead('cn-hangzhou', 'packages', 1_010_000); // an older read ending late does not go back
    expect((await values(registry)).find(([r, f]) => r === 'cn-hangzhou' && f === 'packages')?.[2]).toBe(10);
  });

  it('registers once per registry (several cloud factories may share one)', () => {
    const registry = new Registry();
    expect(changeFeedMetrics(registry)).toBe(changeFeedMetrics(registry));
    expect(registry.getSingleMetric(NAME)).toBeDefined();
  });
});
