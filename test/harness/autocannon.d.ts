/**
 * The part of autocannon 9's API (https://github.com/mcollina/autocannon#api) that
 * test/harness/load.ts uses; the package ships no types.
 */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  interface Request {
    method?: string;
    path?: string;
    onResponse?: (status: number, body: string, context: unknown, headers: Record<string, string>) => void;
  }
  interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    overallRate?: number;
    amount?: number;
    duration?: number;
    timeout?: number;
    reconnectRate?: number;
    requests?: Request[];
  }
  interface Instance extends EventEmitter {
    stop(): void;
  }
  function autocannon(opts: Options, cb: (err: Error | null, result: unknown) => void): Instance;
  export default autocannon;
}
