/**
 * Every string of the console in both languages: the two locale files have the same keys (with
 * the plural forms each language needs, Intl.PluralRules), every key the code uses exists,
 * every key-prefix the code builds keys from (`t(\`state.${s}\`)`) has the same children in
 * both, and no value is empty. A key missing in either file fails here.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../../console/src");
const LANGS = ["en", "zh-CN"] as const;
const PLURAL = /_(zero|one|two|few|many|other)$/;

type Tree = { [k: string]: string | Tree };
const locale = (lang: string) =>
  JSON.parse(readFileSync(path.join(ROOT, "locales", `${lang}.json`), "utf8")) as Tree;

function flatten(tree: Tree, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === "string") out.set(key, v);
    else for (const [kk, vv] of flatten(v, key)) out.set(kk, vv);
  }
  return out;
}

/** Keys without plural suffixes, each with the plural forms it has. */
function baseKeys(flat: Map<string, string>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const key of flat.keys()) {
    const m = PLURAL.exec(key);
    const base = m ? key.slice(0, m.index) : key;
    const forms = out.get(base) ?? new Set<string>();
    if (m?.[1]) forms.add(m[1]);
    out.set(base, forms);
  }
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|tsx)$/.test(name) ? [p] : [];
  });
}

const code = sources(ROOT).map((f) => readFileSync(f, "utf8"));
/** `t("a.b")` and `t("a.b", …)` */
const literalKeys = new Set(
  code.flatMap((c) => [...c.matchAll(/\bt\(\s*"([A-Za-z0-9_.-]+)"/g)].map((m) => m[1] as string)),
);
/** `t(\`a.b.${x}\`)`: the prefix a.b */
const builtPrefixes = new Set(
  code.flatMap((c) => [...c.matchAll(/\bt\(\s*`([A-Za-z0-9_.-]+)\.\$\{/g)].map((m) => m[1] as string)),
);

const flat = Object.fromEntries(LANGS.map((l) => [l, flatten(locale(l))])) as Record<
  (typeof LANGS)[number],
  Map<string, string>
>;
const bases = Object.fromEntries(LANGS.map((l) => [l, baseKeys(flat[l])])) as Record<
  (typeof LANGS)[number],
  Map<string, Set<string>>
>;

describe("console translations", () => {
  it("the code uses translation keys (the scan works)", () => {
    expect(literalKeys.size).toBeGreaterThan(100);
    expect(builtPrefixes).toContain("state");
  });

  it("both languages have the same keys", () => {
    const en = [...bases.en.keys()].sort();
    const zh = [...bases["zh-CN"].keys()].sort();
    expect(
      en.filter((k) => !bases["zh-CN"].has(k)),
      "missing in zh-CN",
    ).toEqual([]);
    expect(
      zh.filter((k) => !bases.en.has(k)),
      "missing in en",
    ).toEqual([]);
  });

  it("every plural key has the forms its language needs", () => {
    for (const lang of LANGS) {
      const needed = new Intl.PluralRules(lang)
        .resolvedOptions()
        .pluralCategories.filter((c) => c !== "zero");
      for (const [key, forms] of bases[lang]) {
        if (forms.size === 0) continue;
        expect(
          [...needed].filter((c) => !forms.has(c)),
          `${lang} ${key}`,
        ).toEqual([]);
      }
    }
  });

  it("every key the code names exists in both languages", () => {
    for (const lang of LANGS) {
      const missing = [...literalKeys].filter((k) => !bases[lang].has(k));
      expect(missing, `${lang}`).toEqual([]);
    }
  });

  it("every key family the code builds keys from has children, the same in both languages", () => {
    for (const prefix of builtPrefixes) {
      const children = (lang: (typeof LANGS)[number]) =>
        [...bases[lang].keys()].filter((k) => k.startsWith(`${prefix}.`)).sort();
      expect(children("en").length, prefix).toBeGreaterThan(0);
      expect(children("zh-CN"), prefix).toEqual(children("en"));
    }
  });

  it("no value is empty, and placeholders match between the languages", () => {
    const placeholders = (v: string) => [...v.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort();
    for (const [key, en] of flat.en) {
      expect(en.trim(), key).not.toBe("");
      const base = key.replace(PLURAL, "");
      const zh = flat["zh-CN"].get(key) ?? flat["zh-CN"].get(`${base}_other`) ?? "";
      expect(zh.trim(), key).not.toBe("");
      expect(placeholders(zh), key).toEqual(placeholders(en));
    }
  });

  it("the Chinese file is Chinese", () => {
    const cjk = [...flat["zh-CN"].values()].filter((v) => /[\u4e00-\u9fff]/.test(v));
    expect(cjk.length / flat["zh-CN"].size).toBeGreaterThan(0.9);
  });
});
