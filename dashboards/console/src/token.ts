/**
 * Stage 1 sign-in: an API token (`coldtrace-gateway tokens create`), kept in this browser's
 * localStorage until "sign out". Temporary by design: the QA records API brings user accounts
 * with passwords and sessions, and this file is replaced by its session handling.
 */
const KEY = "coldtrace.console.token";

export function getToken(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string): void {
  localStorage.setItem(KEY, token);
}

export function clearToken(): void {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // storage unavailable: nothing kept
  }
}
