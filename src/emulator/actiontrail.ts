import { randomUUID } from 'node:crypto';
import type { ActionHandler } from './context.js';
import { ApiError, invalidParameter } from './errors.js';
import type { PageLimits } from './params.js';
import { paginate } from './params.js';
import { isoNow } from './state.js';

/** ActionTrail API version served (LookupEvents only). */
export const ACTIONTRAIL_VERSION = '2020-07-06';

/**
 * LookupEvents page size: the 2020-07-06 reference allows at most 50 per call; the emulator's
 * default of 20 follows the reference's example value (assumption, see docs/emulator.md).
 */
const L_1_50: PageLimits = { min: 1, max: 50, def: 20 };

/** Lookup window when StartTime is absent: the last 7 days (LookupEvents reference). */
const DEFAULT_WINDOW_MS = 7 * 24 * 3600 * 1000;

/** One recorded management event (field names as ActionTrail's management event structure). */
export interface TrailEvent {
  eventId: string;
  eventVersion: 1;
  eventName: string;
  eventType: 'ApiCall';
  eventCategory: 'Management';
  eventRW: 'Write';
  eventSource: string;
  /** UTC, seconds resolution: `2026-12-07T14:52:13Z`. */
  eventTime: string;
  acsRegion: string;
  apiVersion: string;
  serviceName: string;
  requestId: string;
  /** The request's parameters but signature fields and secret values. */
  requestParameters: Record<string, string>;
  /** Instance IDs or the execution ID the call names, comma-separated; '' when none. */
  resourceName: string;
  /** `ACS::ECS::Instance`, `ACS::OOS::Execution`, or '' when the call names no resource. */
  resourceType: string;
  userIdentity: { type: 'ram-user'; accessKeyId: string };
}

/** What {@link ActionTrail.record} needs from one answered API call. */
interface TrailCall {
  action: string;
  /** Product as the emulator names it (`Oos`, `Ecs`). */
  serviceName: string;
  apiVersion: string;
  regionId: string;
  requestId: string;
  params: Record<string, string>;
  instanceIds: string[];
  /** AccessKey ID the call was signed with (V1 `AccessKeyId` or the ACS3 `Credential`). */
  accessKeyId: string;
  /** Execution the call names or started (`ExecutionId` parameter or StartExecution response). */
  executionId?: string;
}

/** Request parameters never copied into an event: signature fields and secret values. */
const DROPPED = new Set(['Signature', 'SignatureNonce', 'SignatureMethod', 'SignatureVersion']);
/** Actions whose `Value` parameter is a secret (encrypted OOS parameters). */
const SECRET_VALUE_ACTIONS = new Set(['CreateSecretParameter', 'UpdateSecretParameter']);

/**
 * Host name of a product's endpoint in `regionId`: `ecs.aliyuncs.com` for ECS (its central
 * endpoint), `<product>.<regionId>.aliyuncs.com` (product lowercased) for the others. Used for the
 * error body's `HostId` and an event's `eventSource`.
 * @param productName product as the emulator names it (`Oos`, `Ecs`, `Actiontrail`).
 */
export function productHost(productName: string, regionId: string): string {
  return productName === 'Ecs' ? 'ecs.aliyuncs.com' : `${productName.toLowerCase()}.${regionId}.aliyuncs.com`;
}

/**
 * Whether ActionTrail records `action` as a write event in the emulator: every action whose name
 * does not start with `Describe`, `List`, `Get` or `Lookup` (the read verbs of the APIs served).
 */
function isWriteAction(action: string): boolean {
  return !/^(Describe|List|Get|Lookup)/.test(action);
}

/**
 * The emulator's ActionTrail: every write API call the emulator answers successfully is recorded
 * as a management event (`eventType` ApiCall, `eventRW` Write) and can be queried with
 * `LookupEvents` once the emulator clock has passed `eventTime + delayMs`. Read calls and the calls
 * OOS template steps make inside executions are not recorded (see docs/emulator.md "Change feed
 * facts").
 */
export class ActionTrail {
  /** Most events kept; the oldest are dropped beyond it (bounds the emulator's memory). */
  static readonly MAX_EVENTS = 50_000;
  readonly events: TrailEvent[] = [];

  /**
   * @param delayMs delivery delay in milliseconds of the emulator clock (state.ts
   *   `setEmulatorClock`; not scaled by timeScale): an event is returned by LookupEvents only once
   *   the clock reaches its eventTime plus this. Default 0. @throws Error when negative.
   */
  constructor(public delayMs = 0) {
    if (!(delayMs >= 0)) throw new Error(`ActionTrail delay must be >= 0 ms, got ${delayMs}`);
  }

  /** Records one successfully answered call when it is a write ({@link isWriteAction}). */
  record(c: TrailCall): void {
    if (!isWriteAction(c.action)) return;
    const requestParameters: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.params)) {
      if (DROPPED.has(k)) continue;
      requestParameters[k] = SECRET_VALUE_ACTIONS.has(c.action) && k === 'Value' ? '******' : v;
    }
    const byInstance = c.instanceIds.length > 0;
    const resourceName = byInstance ? c.instanceIds.join(',') : (c.executionId ?? '');
    this.events.push({
      eventId: randomUUID().toUpperCase(),
      eventVersion: 1,
      eventName: c.action,
      eventType: 'ApiCall',
      eventCategory: 'Management',
      eventRW: 'Write',
      eventSource: productHost(c.serviceName, c.regionId),
      eventTime: isoNow(),
      acsRegion: c.regionId,
      apiVersion: c.apiVersion,
      serviceName: c.serviceName,
      requestId: c.requestId,
      requestParameters,
      resourceName,
      resourceType: byInstance ? 'ACS::ECS::Instance' : resourceName ? 'ACS::OOS::Execution' : '',
      userIdentity: { type: 'ram-user', accessKeyId: c.accessKeyId },
    });
    if (this.events.length > ActionTrail.MAX_EVENTS)
      this.events.splice(0, this.events.length - ActionTrail.MAX_EVENTS);
  }

  /** Drops every event (emulator reset). */
  clear(): void {
    this.events.length = 0;
  }
}

/** LookupAttribute keys the emulator filters on, with the event field each one matches. */
const ATTRIBUTE_FIELDS: Record<string, (e: TrailEvent) => string[]> = {
  EventName: (e) => [e.eventName],
  ServiceName: (e) => [e.serviceName],
  EventId: (e) => [e.eventId],
  EventRW: (e) => [e.eventRW],
  ResourceType: (e) => [e.resourceType],
  ResourceName: (e) => e.resourceName.split(','),
  EventAccessKeyId: (e) => [e.userIdentity.accessKeyId],
  EventType: (e) => [e.eventType],
};

function parseTime(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const t = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) || Number.isNaN(t))
    throw invalidParameter(name, 'expected an ISO 8601 UTC time like 2020-06-15T14:00:00Z');
  return t;
}

/**
 * LookupEvents (ActionTrail 2020-07-06): `StartTime` / `EndTime` (ISO 8601 UTC, inclusive;
 * defaults: 7 days ago / now), `LookupAttribute.N.Key` / `.Value` (at most 2, all must match
 * exactly and case-sensitively; keys in {@link ATTRIBUTE_FIELDS}), `MaxResults` (1–50, default 20),
 * `NextToken`. Newest event first. Only events past the delivery delay are returned.
 */
const lookupEvents: ActionHandler = (ctx) => {
  const trail = ctx.trail;
  if (!trail) throw new ApiError(500, 'InternalError', 'ActionTrail is not configured.');
  const p = ctx.params;
  const nowMs = Date.parse(isoNow());
  const start = parseTime(p.str('StartTime'), 'StartTime', nowMs - DEFAULT_WINDOW_MS);
  const end = parseTime(p.str('EndTime'), 'EndTime', nowMs);
  if (start > end) throw invalidParameter('StartTime', 'StartTime is later than EndTime');
  const attrs = p.objList('LookupAttribute');
  if (attrs.length > 2) throw invalidParameter('LookupAttribute', 'at most 2 attributes');
  const filters = attrs.map((a, i) => {
    const key = a['Key'];
    const field = key === undefined ? undefined : ATTRIBUTE_FIELDS[key];
    if (!field)
      throw invalidParameter(`LookupAttribute.${i + 1}.Key`, `unsupported key ${JSON.stringify(key ?? '')}`);
    return { field, value: a['Value'] ?? '' };
  });
  const rows = trail.events
    .filter((e) => {
      const t = Date.parse(e.eventTime);
      return (
        t >= start &&
        t <= end &&
        t + trail.delayMs <= nowMs &&
        filters.every((f) => f.field(e).includes(f.value))
      );
    })
    .reverse();
  const page = paginate(p, rows, L_1_50, 'LookupEvents');
  return {
    StartTime: new Date(start).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    EndTime: new Date(end).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    NextToken: page.nextToken,
    Events: page.items,
  };
};

/** ActionTrail 2020-07-06 actions the emulator serves. */
export const ACTIONTRAIL_ACTIONS: Record<string, ActionHandler> = {
  LookupEvents: lookupEvents,
};
