/**
 * The quarantine policy: what happens to a lot that an excursion or a recording gap touched.
 * Configurable per gateway (zod-validated, every problem reported with its path); the
 * defaults follow the GDP reading in docs/qa/quarantine.md: quarantine when product quality
 * may be affected and the evidence is clear, otherwise flag for QA review — never do nothing.
 */
import { invalidInput } from "@coldtrace/protocol";
import { type QuarantinePolicy, quarantinePolicy } from "../config/schema.ts";

// The schema is a setting, so it lives with the configuration (config/schema.ts); the rules here.
export { type QuarantinePolicy, type QuarantinePolicyInput, quarantinePolicy } from "../config/schema.ts";

export const defaultPolicy: QuarantinePolicy = quarantinePolicy.parse({});

/** Validate a policy; throws CT_CFG_INVALID listing every bad field. */
export function parsePolicy(input: unknown): QuarantinePolicy {
  const r = quarantinePolicy.safeParse(input ?? {});
  if (!r.success) throw invalidInput("CT_CFG_INVALID", "lots.policy", r.error, input);
  return r.data;
}

/** What one cause did to one lot, as the policy sees it. */
export interface ExposureFacts {
  cause: "excursion" | "gap";
  tier?: "alert" | "action";
  peakC: number | null;
  troughC: number | null;
  doNotFreeze: boolean;
  absoluteMinC: number | null;
  absoluteMaxC: number | null;
  /** Budget minutes left per side after this exposure (negative: exceeded); null = no budget. */
  remaining: { high: number | null; low: number | null };
}

export interface Decision {
  action: "quarantine" | "flag" | "none";
  reasons: string[];
}

export function decide(policy: QuarantinePolicy, f: ExposureFacts, causeId: string): Decision {
  const quarantine: string[] = [];
  const flag: string[] = [];
  if (f.cause === "gap") {
    (policy.quarantineOnRecordingGap ? quarantine : flag).push(
      `recording gap ${causeId} while the lot was inside: exposure unknown`,
    );
  } else if (f.tier === "action") {
    (policy.quarantineOnActionExcursion ? quarantine : flag).push(
      `action-level excursion ${causeId} touched the lot`,
    );
  } else {
    (policy.quarantineOnAlertExcursion ? quarantine : flag).push(
      `alert-level excursion ${causeId} touched the lot`,
    );
  }
  if (f.doNotFreeze && f.troughC !== null && f.troughC <= policy.freezeThresholdC) {
    (policy.quarantineOnFreeze ? quarantine : flag).push(
      `do-not-freeze product reached ${f.troughC} °C (≤ ${policy.freezeThresholdC} °C) during ${causeId}`,
    );
  }
  if (f.absoluteMinC !== null && f.troughC !== null && f.troughC < f.absoluteMinC) {
    (policy.quarantineOnAbsoluteLimit ? quarantine : flag).push(
      `${f.troughC} °C is below the absolute limit ${f.absoluteMinC} °C during ${causeId}`,
    );
  }
  if (f.absoluteMaxC !== null && f.peakC !== null && f.peakC > f.absoluteMaxC) {
    (policy.quarantineOnAbsoluteLimit ? quarantine : flag).push(
      `${f.peakC} °C is above the absolute limit ${f.absoluteMaxC} °C during ${causeId}`,
    );
  }
  for (const side of ["high", "low"] as const) {
    const left = f.remaining[side];
    if (left !== null && left < 0) {
      (policy.quarantineOnBudgetExceeded ? quarantine : flag).push(
        `stability budget (${side}) exceeded by ${Math.round(-left * 10) / 10} min`,
      );
    }
  }
  if (quarantine.length > 0) return { action: "quarantine", reasons: [...quarantine, ...flag] };
  if (flag.length > 0 && policy.flagOtherwise) return { action: "flag", reasons: flag };
  return { action: "none", reasons: flag };
}
