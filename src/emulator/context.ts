import type { ActionTrail } from './actiontrail.js';
import type { ExecutionEngine } from './engine.js';
import type { InvocationEngine } from './invocations.js';
import type { LoadBalancerState } from './loadbalancers.js';
import type { Params } from './params.js';
import type { CloudState } from './state.js';

/** What an action handler gets: the request's parameters and the emulator's state. */
export interface ActionContext {
  params: Params;
  /** From the `RegionId` parameter (default region when absent and the action allows it). */
  regionId: string;
  state: CloudState;
  executions: ExecutionEngine;
  invocations: InvocationEngine;
  /** The emulator's ActionTrail (LookupEvents reads it); absent in handler unit tests. */
  trail?: ActionTrail;
  /** CLB and ALB server groups (loadbalancers.ts); absent in handler unit tests of other products. */
  loadBalancers?: LoadBalancerState;
}

/** An action handler returns the response body without `RequestId` (added by the server). */
export type ActionHandler = (ctx: ActionContext) => Record<string, unknown>;
