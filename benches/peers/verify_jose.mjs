// Node peer of the jwt-exchange login bench: `jose` jwtVerify on the same RS256 Entra-shaped
// token with the same key as the Rust bench (files written by `peers --out DIR`). The key is
// imported once (importJWK), then jwtVerify with signature, issuer, audience and expiry checks
// runs in a loop. Prints `ns_per_op <median> <min> <max>` over rounds.
//
// Usage: node verify_jose.mjs DIR [ROUNDS] [SECONDS_PER_ROUND]

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { importJWK, jwtVerify } from 'jose';

const [work, roundsArg, secondsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 7);
const seconds = Number(secondsArg ?? 0.5);
const token = readFileSync(`${work}/token.txt`, 'ascii').trim();
const jwk = JSON.parse(readFileSync(`${work}/jwk.json`, 'utf8'));
const expect = JSON.parse(readFileSync(`${work}/expect.json`, 'utf8'));
const key = await importJWK(jwk, 'RS256');

async function once() {
  const { payload } = await jwtVerify(token, key, {
    algorithms: ['RS256'],
    issuer: expect.iss,
    audience: expect.aud,
    requiredClaims: ['exp'],
  });
  if (payload.oid !== expect.oid) throw new Error('wrong claims');
}

await once();
const perOp = [];
for (let r = 0; r < rounds; r++) {
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let now;
  for (;;) {
    for (let i = 0; i < 16; i++) await once();
    n += 16;
    now = process.hrtime.bigint();
    if (now >= deadline) break;
  }
  perOp.push(Number(now - start) / n);
}
perOp.sort((a, b) => a - b);
const median = perOp.length % 2 ? perOp[(perOp.length - 1) / 2]
  : (perOp[perOp.length / 2 - 1] + perOp[perOp.length / 2]) / 2;
console.log(`ns_per_op ${median.toFixed(0)} ${perOp[0].toFixed(0)} ${perOp[perOp.length - 1].toFixed(0)}`);
const require = createRequire(import.meta.url);
console.log(`library jose ${require('jose/package.json').version} node ${process.version}`);
