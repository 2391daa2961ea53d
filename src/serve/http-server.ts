// The HTTP side of `pageref serve` (node:http, no framework): GET only,
// fixed paths, each answered from a ServeSource at the time of the request.

import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renderMetrics } from './metrics-negotiation';
import type { ServeSource } from './serve-state';

/** Loopback: metrics and stacks say what runs on the machine; exposing them is the operator's decision. */
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 9464 };

export const ENDPOINTS = ['/metrics', '/stacks', '/stacks/<id>', '/debug/pprof/holds', '/captures'];

export function handleRequest(source: ServeSource, request: IncomingMessage, response: ServerResponse): void {
  if (request.method !== 'GET') {
    send(response, 405, 'text/plain; charset=utf-8', `${request.method} is not allowed; only GET\n`, { Allow: 'GET' });
    return;
  }
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (path === '/metrics') sendMetrics(source, request, response);
  else if (path === '/stacks') sendJson(response, 200, source.culpritStacks());
  else if (path.startsWith('/stacks/')) {
    const stack = source.culpritStacks()[path.slice('/stacks/'.length)];
    if (stack) sendJson(response, 200, stack);
    else send(response, 404, 'text/plain; charset=utf-8', 'no culprit stack has that id\n');
  } else if (path === '/debug/pprof/holds') {
    send(response, 200, 'application/octet-stream', source.holdsProfile(), { 'Content-Disposition': 'attachment; filename="holds.pb.gz"' });
  } else if (path === '/captures') sendJson(response, 200, source.captures());
  else send(response, 404, 'text/plain; charset=utf-8', `not found; endpoints: ${ENDPOINTS.join(' ')}\n`);
}

/** OpenMetrics or 0.0.4 text, as the Accept header asks (metrics-negotiation.ts). */
function sendMetrics(source: ServeSource, request: IncomingMessage, response: ServerResponse): void {
  const { contentType, body } = renderMetrics(source.metricFamilies(), request.headers.accept);
  // a cache between scraper and server must not answer a request for one format with the other
  send(response, 200, contentType, body, { Vary: 'Accept' });
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  send(response, status, 'application/json', JSON.stringify(value) + '\n');
}

function send(response: ServerResponse, status: number, contentType: string, body: string | Uint8Array, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

/**
 * Listens on host:port (port 0: any free one) and resolves once bound, with
 * the address actually bound; rejects on a bind error (EADDRINUSE, EACCES).
 * A request whose handler throws gets a 500, and the server goes on.
 */
export function startServer(source: ServeSource, host: string, port: number): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((request, response) => {
    try {
      handleRequest(source, request, response);
    } catch (error) {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `pageref: ${(error as Error).message}\n`);
      else response.destroy();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({ server, address: server.address() as AddressInfo });
    });
  });
}

/** "HOST:PORT" or "[IPv6]:PORT"; null if it is neither. */
export function parseListen(text: string): { host: string; port: number } | null {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return null;
  const port = Number(match[3]);
  if (port > 65535) return null;
  return { host: match[1] ?? match[2], port };
}
