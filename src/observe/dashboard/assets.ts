/**
 * The dashboard's static files, ready to serve. The page is plain HTML + one vanilla JS module +
 * CSS beside this file, so there is no build step and what ships is what is edited.
 */
import { readFileSync } from 'node:fs';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
}

/** URL path -> file beside this module. '/' and '/index.html' both give the page. */
const FILES: ReadonlyArray<readonly [path: string, file: string, contentType: string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/index.html', 'index.html', 'text/html; charset=utf-8'],
  ['/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
  ['/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
];

let cached: Map<string, DashboardAsset> | undefined;

/**
 * Path -> body and Content-Type for every dashboard asset. Files are read once, on first call,
 * and shared afterwards; the returned Map is a fresh copy, so callers may not disturb each other.
 */
export function dashboardAssets(): Map<string, DashboardAsset> {
  if (cached === undefined) {
    const bodies = new Map<string, Buffer>();
    cached = new Map();
    for (const [path, file, contentType] of FILES) {
      let body = bodies.get(file);
      if (body === undefined) {
        body = readFileSync(new URL(file, import.meta.url));
        bodies.set(file, body);
      }
      cached.set(path, { body, contentType });
    }
  }
  return new Map(cached);
}
