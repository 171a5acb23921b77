/**
 * `node:http`, loaded through require rather than an ESM import. Node 24 builds the ESM namespace
 * of a builtin by reading every export, and node:http's include lazy getters (WebSocket,
 * CloseEvent, MessageEvent) that load undici and http2 to answer: ~15 MB of an idle node's memory
 * (BENCHMARKS.md "Idle memory") for classes jincache never uses. `require` reads nothing it is
 * not asked for. Type-only imports of node:http cost nothing and stay as they are.
 */
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');
export default http;
