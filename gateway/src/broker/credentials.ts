/**
 * MQTT accounts of devices and services. Secrets are stored only as scrypt hashes with a
 * per-account random salt (RFC 7914; node:crypto defaults N=16384, r=8, p=1), never in plain
 * text; `addCredential` returns the generated secret once, for the technician to copy.
 *
 *   role     username   may publish                          may subscribe
 *   agent    {agentId}  ct/v1/{site}/agent/{agentId}/#       ct/v1/_gateway/+/state, its own topics
 *   planner  any        —                                     eligibility/+, events/lot/+ (its sites)
 *   erp      any        ct/v1/{site}/movements (its sites)    ct/v1/_gateway/+/state
 *   monitor  any        —                                     events/#, eligibility/+, agent/+/state (its sites)
 *   gateway  any        everything                            everything
 *
 * Agent usernames are the agent ids (unique across the fleet), so the Mosquitto pattern
 * `pattern write ct/v1/+/agent/%u/#` confines an agent there too (docs/integrator/mosquitto.md).
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { ColdtraceError, segmentId } from "@coldtrace/protocol";
import { z } from "zod";

export const roleSchema = z.enum(["agent", "planner", "erp", "monitor", "gateway"]);
export type Role = z.infer<typeof roleSchema>;

export const credentialSchema = z
  .object({
    username: z.string().min(1).max(128),
    role: roleSchema,
    /** Sites the account belongs to; `*` for all (planner, gateway). */
    siteIds: z.array(z.union([segmentId, z.literal("*")])).min(1),
    agentId: segmentId.optional(),
    /** `scrypt$<salt hex>$<hash hex>` */
    secretHash: z.string().regex(/^scrypt\$[0-9a-f]+\$[0-9a-f]+$/),
    createdAt: z.number().int(),
  })
  .strict();
export type Credential = z.infer<typeof credentialSchema>;

const fileSchema = z.object({ version: z.literal(1), credentials: z.array(credentialSchema) }).strict();

/** Who a connected client is, once authenticated. */
export interface Identity {
  username: string;
  role: Role;
  siteIds: readonly string[];
  agentId?: string;
}

const KEY_LEN = 32;

function scryptAsync(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEY_LEN, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt);
  return `scrypt$${salt.toString("hex")}$${key.toString("hex")}`;
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [scheme, saltHex, keyHex] = stored.split("$");
  if (scheme !== "scrypt" || !saltHex || !keyHex) return false;
  const expected = Buffer.from(keyHex, "hex");
  const key = await scryptAsync(secret, Buffer.from(saltHex, "hex"));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A generated secret: 24 random bytes, base64url (192 bits). */
export function generateSecret(): string {
  return randomBytes(24).toString("base64url");
}

/** The account registry the broker authenticates against. In memory; `load`/`save` for a JSON file. */
export class CredentialStore {
  #byUsername = new Map<string, Credential>();

  constructor(credentials: readonly Credential[] = []) {
    for (const c of credentials) this.#byUsername.set(c.username, c);
  }

  static async load(file: string): Promise<CredentialStore> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return new CredentialStore();
      throw new ColdtraceError("CT_CFG_UNREADABLE", `${file}: ${(err as Error).message}`, { file });
    }
    const parsed = fileSchema.safeParse(JSON.parse(text));
    if (!parsed.success) {
      const text2 = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
      throw new ColdtraceError("CT_CFG_INVALID", `${text2} (${file})`, { file });
    }
    return new CredentialStore(parsed.data.credentials);
  }

  async save(file: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp`;
    const body = JSON.stringify({ version: 1, credentials: this.list() }, null, 2);
    await writeFile(tmp, `${body}\n`, { mode: 0o600 });
    await rename(tmp, file);
  }

  list(): Credential[] {
    return [...this.#byUsername.values()];
  }

  get(username: string): Credential | undefined {
    return this.#byUsername.get(username);
  }

  /** Add (or replace) an account with a fresh secret; returns the secret, shown once. */
  async add(input: {
    username: string;
    role: Role;
    siteIds: readonly string[];
    agentId?: string;
    secret?: string;
    now?: number;
  }): Promise<{ credential: Credential; secret: string }> {
    const secret = input.secret ?? generateSecret();
    const credential = credentialSchema.parse({
      username: input.username,
      role: input.role,
      siteIds: [...input.siteIds],
      ...(input.agentId === undefined ? {} : { agentId: input.agentId }),
      secretHash: await hashSecret(secret),
      createdAt: input.now ?? Date.now(),
    });
    this.#byUsername.set(credential.username, credential);
    return { credential, secret };
  }

  remove(username: string): boolean {
    return this.#byUsername.delete(username);
  }

  /** The identity for a username and secret, or undefined when either is wrong. */
  async authenticate(
    username: string | undefined,
    secret: string | undefined,
  ): Promise<Identity | undefined> {
    if (username === undefined || secret === undefined) return undefined;
    const c = this.#byUsername.get(username);
    if (!c) return undefined;
    if (!(await verifySecret(secret, c.secretHash))) return undefined;
    return {
      username: c.username,
      role: c.role,
      siteIds: c.siteIds,
      ...(c.agentId === undefined ? {} : { agentId: c.agentId }),
    };
  }
}
