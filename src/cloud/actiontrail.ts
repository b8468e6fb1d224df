/**
 * ActionTrail (API version 2020-07-06) of one region, on top of {@link ApiCaller}: `LookupEvents`
 * only, the change feed's source of direct writes that leave no OOS execution (a direct
 * `UpdateInstancePackageState`). No product SDK is on npm (`@alicloud/actiontrail20200706`: 404), so
 * the call goes through the same generic openapi-core RPC path as OOS and ECS (`sdk.ts`); the
 * regional endpoint is `actiontrail.<regionId>.aliyuncs.com`.
 *
 * References (read 2026-12): https://alibabacloud.com/help/en/actiontrail/developer-reference/api-actiontrail-2020-07-06-lookupevents
 * (at most 2 calls per second; `MaxResults` ≤ 50; `NextToken` with the same parameters),
 * https://help.aliyun.com/en/actiontrail/support/how-to-set-the-lookupattribute-parameter
 * (`LookupAttribute.N.Key` `EventName`, exact match), https://www.alibabacloud.com/help/doc-detail/28819.html
 * (event fields `eventId`, `eventName`, `eventTime`, `resourceName`, `requestParameters`), and
 * docs/emulator.md "Change feed facts".
 */
import type { ActionSafety, RegionCaller } from './caller.js';
import { allPages, arr, jsonObject, jsonValue, obj, str, type Raw } from './convert.js';
import type { ActionTrailApi, TrailEvent } from './types.js';

/** ActionTrail API version. */
export const ACTIONTRAIL_API_VERSION = '2020-07-06';

/** Every ActionTrail action this layer calls, with its retry safety (see `caller.ts`). */
export const ACTIONTRAIL_ACTIONS: Readonly<Record<string, ActionSafety>> = {
  LookupEvents: 'read',
};

/**
 * Default per-action limit of `LookupEvents` per region, requests per sliding second: the
 * documented limit ("at most twice per second"). It is per account, so several regions share it and
 * the caller's throttling backoff absorbs the rest; `--cloud-action-qps LookupEvents=N` replaces it.
 */
export const ACTIONTRAIL_QPS = 2;

/** `MaxResults` of each `LookupEvents` page: the documented maximum. */
const LOOKUP_PAGE_SIZE = 50;

/**
 * Pages one {@link ActionTrailClient.lookupEvents} reads at most: 20 × 50 = the newest 1,000
 * events of the window. Beyond it the oldest events of the window are not returned (the full
 * resync of the fleet view covers what they would have marked); a caller can tell by
 * `events.length >= LOOKUP_MAX_EVENTS`.
 */
export const LOOKUP_MAX_PAGES = 20;

/** Most events one {@link ActionTrailClient.lookupEvents} returns ({@link LOOKUP_MAX_PAGES} full pages). */
export const LOOKUP_MAX_EVENTS = LOOKUP_MAX_PAGES * LOOKUP_PAGE_SIZE;

/** A request-parameter value as a string: strings as they are, numbers/booleans as text, the rest as JSON. */
function paramText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/**
 * One event of a `LookupEvents` answer (an object, or a JSON string of one) → {@link TrailEvent}.
 * `resourceName` holds the resource names comma-separated (semicolons are accepted too); empty
 * names are dropped. `requestParameters` (an object or a JSON string of one) keeps every key with
 * a non-null value, as text.
 */
export function toTrailEvent(raw: unknown): TrailEvent {
  const r: Raw = obj(jsonValue(raw));
  const requestParameters: Record<string, string> = {};
  for (const [k, v] of Object.entries(jsonObject(r['requestParameters']))) {
    const text = paramText(v);
    if (text !== undefined) requestParameters[k] = text;
  }
  return {
    eventId: str(r['eventId']) ?? '',
    eventName: str(r['eventName']) ?? '',
    eventTime: str(r['eventTime']) ?? '',
    resourceNames: (str(r['resourceName']) ?? '')
      .split(/[,;]/)
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    requestParameters,
  };
}

/** ActionTrail client of one region. Construct through `createCloudClients` (`actionTrail(regionId)`). */
export class ActionTrailClient implements ActionTrailApi {
  constructor(private readonly caller: RegionCaller) {}

  get regionId(): string {
    return this.caller.regionId;
  }

  /**
   * ActionTrail `LookupEvents` of the events named `eventName` (`LookupAttribute.1.Key` =
   * `EventName`, exact and case-sensitive) between `startTime` and `endTime` (ISO 8601 UTC such as
   * `2026-12-07T14:00:00Z`; `endTime` default: the service's now), newest first, following
   * `NextToken` with pages of {@link LOOKUP_PAGE_SIZE}.
   *
   * Bounded: after {@link LOOKUP_MAX_PAGES} pages it stops and resolves what it read (the newest
   * {@link LOOKUP_MAX_EVENTS} events of the window), so a burst of writes cannot make one feed read
   * unbounded; the caller detects it by the length.
   * @throws CloudError from the call (e.g. `Forbidden.RAM` without `actiontrail:LookupEvents`, a
   *   permission error; `InvalidParameter` for a bad time), or a transient `PaginationIncomplete`
   *   when the service repeats a `NextToken` (the pages would loop).
   */
  async lookupEvents(req: { eventName: string; startTime: string; endTime?: string }): Promise<TrailEvent[]> {
    return allPages(
      { product: 'actiontrail', action: 'LookupEvents' },
      async (nextToken) => {
        const body = await this.caller.call('LookupEvents', {
          LookupAttribute: [{ Key: 'EventName', Value: req.eventName }],
          StartTime: req.startTime,
          EndTime: req.endTime,
          MaxResults: LOOKUP_PAGE_SIZE,
          NextToken: nextToken,
        });
        return { items: eventList(body['Events']).map(toTrailEvent), nextToken: str(body['NextToken']) };
      },
      { maxPages: LOOKUP_MAX_PAGES, atMaxPages: 'stop' },
    );
  }
}

/** `Events`: an array (of objects or JSON strings), or the whole array as a JSON string. */
function eventList(v: unknown): unknown[] {
  const parsed = jsonValue(v);
  return Array.isArray(parsed) ? parsed : arr(parsed);
}
