/**
 * What the hub serves besides the protocol, as a new user clicks through it (issue 14): every
 * sample app the README and the landing page list answers at /examples/<name>/ with the shared
 * styles (item 12: the IoT sample answered 404 and its page was unstyled), and the SDK bundle the
 * pages load comes with its source map (item 16).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { HeraldServer } from '@herald/server';
import { pages } from '../src/pages.ts';
import { API_KEY, JWT_SECRET } from '../../../test/support/hub.ts';

const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('served files', () => {
  let url: string;
  let server: HeraldServer;
  before(async () => {
    const site = pages({ apiKey: API_KEY, jwtSecret: JWT_SECRET, admin: true, demo: false });
    server = new HeraldServer({ apiKey: API_KEY, jwtSecret: JWT_SECRET, routes: site.routes });
    url = `http://127.0.0.1:${(await server.listen(0, '127.0.0.1')).port}`;
  });
  after(() => server.close());

  it('serves every sample app the landing page links, styled like the others', async () => {
    const landing = await (await fetch(`${url}/`)).text();
    const linked = [...landing.matchAll(/href="\/examples\/([a-z0-9-]+)\/"/g)].map((m) => m[1] as string);
    assert.ok(linked.includes('iot'), 'the IoT sample is on the landing page');
    for (const name of linked) {
      const page = await fetch(`${url}/examples/${name}/`);
      assert.equal(page.status, 200, `/examples/${name}/`);
      const html = await page.text();
      assert.match(html, /<link rel="stylesheet" href="\/lib\/base\.css"/, `${name} uses the shared styles`);
      for (const [, asset] of html.matchAll(/(?:href|src)="(\/[^"]+\.(?:css|js))"/g)) {
        assert.equal((await fetch(`${url}${asset}`)).status, 200, `${name}: ${asset}`);
      }
    }
  });

  it('serves every sample app the README lists', async () => {
    const row = README.split('\n').find((line) => line.startsWith('| `examples/` |')) ?? '';
    assert.match(row, /IoT/);
    for (const name of ['order-tracking', 'chat', 'live-dashboard', 'iot']) {
      assert.equal((await fetch(`${url}/examples/${name}/`)).status, 200, name);
    }
  });

  it('serves the SDK bundle with a source map of the TypeScript sources', async () => {
    const bundle = await fetch(`${url}/herald-client.js`);
    assert.equal(bundle.status, 200);
    const code = await bundle.text();
    const mapName = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(code)?.[1];
    assert.equal(mapName, 'herald-client.js.map');
    const map = await fetch(`${url}/${mapName}`);
    assert.equal(map.status, 200);
    assert.match(map.headers.get('content-type') ?? '', /^application\/json/);
    const json = (await map.json()) as {
      version: number;
      sources: string[];
      sourcesContent?: string[];
      mappings: string;
    };
    assert.equal(json.version, 3);
    const client = json.sources.findIndex((s) => s.endsWith('packages/client/src/client.ts'));
    assert.ok(client !== -1, json.sources.join(', '));
    assert.match(json.sourcesContent?.[client] ?? '', /export class Herald/);
    assert.ok(json.mappings.length > 1000);
  });
});
