/**
 * State icons: the shape says the state as much as the colour does (action an octagon, alert
 * a triangle, offline a crossed plug, gap a broken line, ok a tick), and a word always goes
 * with them — colour is never the only signal.
 */
import type { UnitState } from "../api.ts";

const PATHS: Record<UnitState | "fault" | "calibration" | "bell" | "live" | "lost", string> = {
  action: "M7.5 2h9L22 7.5v9L16.5 22h-9L2 16.5v-9zM11 7v6h2V7zm0 8v2h2v-2z",
  alert: "M12 2 1 21h22zm-1 7h2v6h-2zm0 8h2v2h-2z",
  offline:
    "M3.3 2 2 3.3l4 4V11a6 6 0 0 0 5 5.9V22h2v-5.1a6 6 0 0 0 2.6-1L20.7 21 22 19.7zM16 4V1h-2v3h-4V1H8v1.2L17.8 12A6 6 0 0 0 18 11V6h-2z",
  gap: "M2 11h4v2H2zm6 0h3v2H8zm5 0h3v2h-3zm5 0h4v2h-4zM11 4h2v4h-2zm0 12h2v4h-2z",
  ok: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm-1.5 14.5-4-4 1.4-1.4 2.6 2.6 5.6-5.6 1.4 1.4z",
  fault: "M22.7 19 13.6 9.9a6.4 6.4 0 0 0-8.3-8.3l4 4-2.8 2.8-4-4a6.4 6.4 0 0 0 8.3 8.3l9.1 9.1z",
  calibration: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 5v5.4l4 2.4-1 1.7-5-3V7z",
  bell: "M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6V11a6 6 0 0 0-5-5.9V3h-2v2.1A6 6 0 0 0 6 11v5l-2 2v1h16v-1z",
  live: "M12 8a4 4 0 1 0 0 8 4 4 0 0 0 0-8z",
  lost: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm3.5 5L17 8.5 13.4 12l3.6 3.5-1.5 1.5-3.5-3.6L8.5 17 7 15.5l3.6-3.5L7 8.5 8.5 7l3.5 3.6z",
};

export function Icon(props: { name: keyof typeof PATHS; class?: string }) {
  return (
    <svg class={`icon ${props.class ?? ""}`} viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d={PATHS[props.name]} fill="currentColor" />
    </svg>
  );
}
