// A real OpenID provider on loopback for Nauthera's tests: panva/oidc-provider with
// Dynamic Client Registration (RFC 7591) and its management (RFC 7592), the
// client_credentials grant, and the per-client lifetimes and PKCE that Nauthera sends as
// client metadata honoured. Usage: node server.mjs [port] — prints "listening <port>".
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const INITIAL_ACCESS_TOKEN = process.env.NAUTHERA_TEST_INITIAL_ACCESS_TOKEN ?? 'nauthera-test-initial-access-token';
const LIFETIMES = ['nauthera_access_token_ttl', 'nauthera_refresh_token_ttl', 'nauthera_id_token_ttl'];

const seconds = (client, key, fallback) => (Number.isInteger(client?.[key]) ? client[key] : fallback);

const server = http.createServer();
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    features: {
      registration: { enabled: true, initialAccessToken: INITIAL_ACCESS_TOKEN },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      devInteractions: { enabled: false },
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'api:read', 'api:write', 'orders:write'],
    extraClientMetadata: {
      properties: [...LIFETIMES, 'nauthera_require_pkce'],
      validator(ctx, key, value) {
        if (value === undefined) return;
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
  server.on('request', provider.callback());
  console.log(`listening ${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
