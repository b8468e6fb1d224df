export { createRegistry } from './registry.js';
export { parseBindAddress, startProbeServer } from './server.js';
export type { ProbeChecks, ProbeServer, ProbeServerOptions } from './server.js';
