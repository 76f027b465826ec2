/**
 * API tokens. A token is 32 random bytes (base64url); the configuration keeps only
 * `sha256:<hex>` of it. SHA-256 (not scrypt) is enough here because tokens are random with
 * 256 bits of entropy, so there is nothing to brute-force, and it keeps each request cheap.
 */
import { createHash, randomBytes } from "node:crypto";

export function hashToken(token: string): string {
  return `sha256:${createHash("sha256").update(token, "utf8").digest("hex")}`;
}

export function generateToken(): { token: string; hash: string } {
  const token = `ct_${randomBytes(32).toString("base64url")}`;
  return { token, hash: hashToken(token) };
}

/** Resolves a bearer token to its name, or undefined. */
export class TokenVerifier {
  readonly #byHash = new Map<string, string>();

  constructor(tokens: readonly { name: string; hash: string }[]) {
    for (const t of tokens) this.#byHash.set(t.hash, t.name);
  }

  verify(authorization: string | undefined): string | undefined {
    if (!authorization) return undefined;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m?.[1]) return undefined;
    return this.#byHash.get(hashToken(m[1]));
  }
}
