/** The zh-CN / en switch (each language named in itself). */
import { type Language, language, languages, setLanguage, t } from "../i18n.ts";

export function LanguageSwitch() {
  return (
    <label class="language">
      <span class="sr-only">{t("nav.language")}</span>
      <select
        value={language.value}
        onChange={(e) => void setLanguage((e.currentTarget as HTMLSelectElement).value as Language)}
      >
        {languages.map((l) => (
          <option value={l} lang={l}>
            {t(`language.${l}`)}
          </option>
        ))}
      </select>
    </label>
  );
}
