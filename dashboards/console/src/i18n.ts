/**
 * Translations with i18next; the strings live in locales/en.json and locales/zh-CN.json (a test
 * fails when a key is missing in either, or used in the code but in neither). The language is
 * a signal, so every component that translates re-renders when it changes.
 *
 * Stage 1 keeps the choice in this browser; per-user language comes with user accounts.
 */
import { signal } from "@preact/signals";
import i18next, { type TOptions } from "i18next";
import en from "./locales/en.json";
import zhCN from "./locales/zh-CN.json";

export const languages = ["zh-CN", "en"] as const;
export type Language = (typeof languages)[number];

const KEY = "coldtrace.console.language";

function stored(): Language | undefined {
  try {
    const v = localStorage.getItem(KEY);
    return (languages as readonly string[]).includes(v ?? "") ? (v as Language) : undefined;
  } catch {
    return undefined;
  }
}

function guess(): Language {
  return navigator.language.toLowerCase().startsWith("en") ? "en" : "zh-CN";
}

export const language = signal<Language>(stored() ?? guess());

await i18next.init({
  lng: language.value,
  fallbackLng: false,
  resources: { en: { translation: en }, "zh-CN": { translation: zhCN } },
  interpolation: { escapeValue: false }, // Preact escapes text itself
  returnNull: false,
});
document.documentElement.lang = language.value;

/** Use the gateway's default unless this browser chose a language before. */
export function applyDefaultLanguage(lang: Language): void {
  if (stored() === undefined) void setLanguage(lang, false);
}

export async function setLanguage(lang: Language, remember = true): Promise<void> {
  if (remember) localStorage.setItem(KEY, lang);
  await i18next.changeLanguage(lang);
  document.documentElement.lang = lang;
  language.value = lang;
}

/**
 * Results per language, key and options: 500 tiles ask for the same few strings, and i18next's
 * lookup and interpolation showed in the overview's profile. Cleared when the language changes.
 */
const memo = new Map<string, string>();
const MEMO_MAX = 20_000;
language.subscribe(() => memo.clear());

/** Translate; reading `language` subscribes the calling component to language changes. */
export function t(key: string, options?: TOptions): string {
  const lang = language.value;
  const id =
    options === undefined ? `${lang}\u0000${key}` : `${lang}\u0000${key}\u0000${JSON.stringify(options)}`;
  let text = memo.get(id);
  if (text === undefined) {
    text = i18next.t(key, options ?? {}) as string;
    if (memo.size >= MEMO_MAX) memo.clear();
    memo.set(id, text);
  }
  return text;
}
