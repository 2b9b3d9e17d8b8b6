/** Raw HTTP/1.1 requests (any method token, any header value, raw body bytes, chunked or not). */
import { request } from 'node:http';

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Send the body chunked (no Content-Length). */
  chunked?: boolean;
}

export interface RawAnswer {
  status: number;
  text: string;
  contentType: string | null;
}

export function send(baseUrl: string, r: RawRequest): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...r.headers, connection: 'close' };
    if (r.body && !r.chunked) headers['content-length'] = String(r.body.byteLength);
    // Explicit: node only chunks POST/PUT/PATCH bodies by default; an unframed DELETE body is
    // "data after the request" to the server (its own 400, while the bodiless request runs).
    if (r.body && r.chunked) headers['transfer-encoding'] = 'chunked';
    const req = request(
      { host: url.hostname, port: url.port, method: r.method, path: r.path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'] ?? null }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (r.body) {
      if (r.chunked) {
        // Several writes without Content-Length: Node sends Transfer-Encoding: chunked.
        const step = 64 * 1024;
        for (let i = 0; i < r.body.byteLength; i += step) req.write(r.body.subarray(i, i + step));
      } else {
        req.write(r.body);
      }
    }
    req.end();
  });
}
