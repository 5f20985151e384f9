"""PyJWT peer of the jwt-exchange login bench.

Verifies the same RS256 Entra-shaped token with the same key as the Rust bench (files written
by `peers --out DIR`): the key is parsed once (PyJWK), then `jwt.decode` with signature, issuer,
audience and expiry checks runs in a loop. Prints `ns_per_op <median> <min> <max>` over rounds.

Usage: python verify_pyjwt.py DIR [ROUNDS] [SECONDS_PER_ROUND]
"""

import json
import statistics
import sys
import time

import jwt


def main() -> None:
    work = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    with open(f"{work}/token.txt", encoding="ascii") as f:
        token = f.read().strip()
    with open(f"{work}/jwk.json", encoding="utf-8") as f:
        jwk = json.load(f)
    with open(f"{work}/expect.json", encoding="utf-8") as f:
        expect = json.load(f)
    key = jwt.PyJWK(jwk, algorithm="RS256")

    def once() -> None:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=expect["aud"],
            issuer=expect["iss"],
            options={"require": ["exp", "iss", "aud"]},
        )
        assert claims["oid"] == expect["oid"]

    once()
    per_op = []
    for _ in range(rounds):
        n = 0
        start = time.perf_counter_ns()
        deadline = start + int(seconds * 1e9)
        while True:
            for _ in range(16):
                once()
            n += 16
            now = time.perf_counter_ns()
            if now >= deadline:
                break
        per_op.append((now - start) / n)
    print(f"ns_per_op {statistics.median(per_op):.0f} {min(per_op):.0f} {max(per_op):.0f}")
    print(f"library PyJWT {jwt.__version__}")


if __name__ == "__main__":
    main()
