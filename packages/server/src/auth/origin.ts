/**
 * Browser origin policy (PROTOCOL.md section 3): checked before any upgrade or stream, so a hostile
 * page cannot ride a user's cookies into a WebSocket (Cross-Site WebSocket Hijacking).
 */
export type OriginPolicy =
  | { readonly kind: 'any' }
  | { readonly kind: 'list'; readonly origins: ReadonlySet<string> }
  | { readonly kind: 'same-host' };

export function originPolicy(origins: readonly string[]): OriginPolicy {
  if (origins.includes('*')) return { kind: 'any' };
  if (origins.length === 0) return { kind: 'same-host' };
  return { kind: 'list', origins: new Set(origins.map((o) => o.toLowerCase().replace(/\/+$/, ''))) };
}

/** A request without `Origin` is not from a browser page and is not refused for that. */
export function isOriginAllowed(policy: OriginPolicy, origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  switch (policy.kind) {
    case 'any':
      return true;
    case 'list':
      return policy.origins.has(origin.toLowerCase());
    case 'same-host': {
      if (host === undefined) return false;
      let url: URL;
      try {
        url = new URL(origin);
      } catch {
        return false;
      }
      return url.host.toLowerCase() === withDefaultPort(host.toLowerCase(), url.protocol);
    }
  }
}

/** `URL.host` drops default ports; compare the Host header the same way. */
function withDefaultPort(host: string, protocol: string): string {
  if (protocol === 'http:' && host.endsWith(':80')) return host.slice(0, -3);
  if (protocol === 'https:' && host.endsWith(':443')) return host.slice(0, -4);
  return host;
}
