// A real OpenID provider on loopback for Nauthera's tests: panva/oidc-provider with
// Dynamic Client Registration (RFC 7591) and its management (RFC 7592), the
// client_credentials grant, token introspection, and the per-client lifetimes and PKCE
// that Nauthera sends as client metadata honoured.
//
// Usage: node server.mjs [port] — prints "listening <port>".
// Environment:
//   NAUTHERA_TEST_INITIAL_ACCESS_TOKEN  the initial access token registrations need
//   NAUTHERA_TEST_DROP_UNKNOWN=1        behave like most providers: keep no nauthera_*
//                                       metadata, and so never echo it
//
// Its store is unbounded and in memory (the stock memory adapter is an LRU that forgets
// clients past ~1,000 entries): a restart is a provider that lost every client.
// Test hooks, beside the provider (never part of the protocol):
//   GET  /nauthera-test/clients          the client ids registered now, as JSON
//   GET  /nauthera-test/registrations    [{client_id, client_name, software_id}] now
//   GET  /nauthera-test/requests         registration requests seen, by method
//   POST /nauthera-test/forget?client_id=X  delete a client, as an administrator would
//   POST /nauthera-test/refuse?status=N  answer every RFC 7592 management request with
//                                        status N (0 turns it off)
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const INITIAL_ACCESS_TOKEN = process.env.NAUTHERA_TEST_INITIAL_ACCESS_TOKEN ?? 'nauthera-test-initial-access-token';
const DROP_UNKNOWN = process.env.NAUTHERA_TEST_DROP_UNKNOWN === '1';
const LIFETIMES = ['nauthera_access_token_ttl', 'nauthera_refresh_token_ttl', 'nauthera_id_token_ttl'];

const seconds = (client, key, fallback) => (Number.isInteger(client?.[key]) ? client[key] : fallback);

// Every model in one Map per model name; entries expire as oidc-provider asks.
const models = new Map();
class UnboundedAdapter {
  constructor(name) {
    if (!models.has(name)) models.set(name, new Map());
    this.store = models.get(name);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload, expiresAt });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) {
    for (const [id, entry] of this.store) if (entry.payload.uid === uid) return this.find(id);
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, entry] of this.store) if (entry.payload.userCode === userCode) return this.find(id);
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, entry] of this.store) if (entry.payload.grantId === grantId) this.store.delete(id);
  }
}

const requests = { POST: 0, GET: 0, PUT: 0, DELETE: 0 };
let refuseWith = 0;

function hooks(req, res, port) {
  const url = new URL(req.url, `http://127.0.0.1:${port}`);
  const json = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (url.pathname === '/nauthera-test/clients') {
    return json(200, [...(models.get('Client') ?? new Map()).keys()]);
  }
  if (url.pathname === '/nauthera-test/registrations') {
    const clients = [...(models.get('Client') ?? new Map()).values()].map(({ payload }) => ({
      client_id: payload.client_id,
      client_name: payload.client_name,
      software_id: payload.software_id,
    }));
    return json(200, clients);
  }
  if (url.pathname === '/nauthera-test/requests') return json(200, requests);
  if (url.pathname === '/nauthera-test/forget' && req.method === 'POST') {
    models.get('Client')?.delete(url.searchParams.get('client_id'));
    return json(200, {});
  }
  if (url.pathname === '/nauthera-test/refuse' && req.method === 'POST') {
    refuseWith = Number(url.searchParams.get('status') ?? 0);
    return json(200, { refuse: refuseWith });
  }
  return json(404, { error: 'not_found' });
}

const server = http.createServer();
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    adapter: UnboundedAdapter,
    features: {
      registration: { enabled: true, initialAccessToken: INITIAL_ACCESS_TOKEN },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      devInteractions: { enabled: false },
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'api:read', 'api:write', 'orders:write'],
    extraClientMetadata: DROP_UNKNOWN ? { properties: [] } : {
      properties: [...LIFETIMES, 'nauthera_require_pkce', 'software_id'],
      validator(ctx, key, value) {
        if (value === undefined || key === 'software_id') return;
        if (key === 'nauthera_require_pkce') {
          if (typeof value !== 'boolean') throw new errors.InvalidClientMetadata(`${key} must be a boolean`);
        } else if (!Number.isInteger(value) || value <= 0) {
          throw new errors.InvalidClientMetadata(`${key} must be a positive number of seconds`);
        }
      },
    },
    pkce: { required: (ctx, client) => client.nauthera_require_pkce === true },
    ttl: {
      AccessToken: (ctx, token, client) => seconds(client, 'nauthera_access_token_ttl', 3600),
      ClientCredentials: (ctx, token, client) => seconds(client, 'nauthera_access_token_ttl', 3600),
      IdToken: (ctx, token, client) => seconds(client, 'nauthera_id_token_ttl', 3600),
      RefreshToken: (ctx, token, client) => seconds(client, 'nauthera_refresh_token_ttl', 86400),
    },
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/nauthera-test/')) return hooks(req, res, port);
    if (req.url.startsWith('/reg')) {
      if (req.method in requests) requests[req.method] += 1;
      const management = req.url.startsWith('/reg/');
      if (management && refuseWith) {
        res.writeHead(refuseWith, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ error: 'access_denied', error_description: 'refused by the test' }));
      }
    }
    return callback(req, res);
  });
  console.log(`listening ${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
