/**
 * The quarantine policy: what happens to a lot that an excursion or a recording gap touched.
 * Configurable per gateway (zod-validated, every problem reported with its path); the
 * defaults follow the GDP reading in docs/qa/quarantine.md: quarantine when product quality
 * may be affected and the evidence is clear, otherwise flag for QA review — never do nothing.
 */
import { ColdtraceError, describeIssues } from "@coldtrace/protocol";
import { z } from "zod";

export const quarantinePolicy = z
  .object({
    /** An action-level excursion that overlapped the lot's time in the unit. */
    quarantineOnActionExcursion: z.boolean().default(true),
    /** An alert-level excursion only: flag (false) or quarantine (true). */
    quarantineOnAlertExcursion: z.boolean().default(false),
    /** The cumulative minutes beyond the product range exceed its stability budget on a side. */
    quarantineOnBudgetExceeded: z.boolean().default(true),
    /** Any reading at or below `freezeThresholdC` for a do-not-freeze product. */
    quarantineOnFreeze: z.boolean().default(true),
    freezeThresholdC: z.number().default(0),
    /** A temperature beyond the product's absolute limits (e.g. "never below 0 °C"). */
    quarantineOnAbsoluteLimit: z.boolean().default(true),
    /** A recording gap while the lot was inside: exposure unknown. */
    quarantineOnRecordingGap: z.boolean().default(true),
    /** Touched but no rule above fired: flag for QA review (true) or ignore (false). */
    flagOtherwise: z.boolean().default(true),
  })
  .strict();
export type QuarantinePolicy = z.output<typeof quarantinePolicy>;
export type QuarantinePolicyInput = z.input<typeof quarantinePolicy>;

export const defaultPolicy: QuarantinePolicy = quarantinePolicy.parse({});

/** Validate a policy; throws CT_CFG_INVALID listing every bad field. */
export function parsePolicy(input: unknown): QuarantinePolicy {
  const r = quarantinePolicy.safeParse(input ?? {});
  if (!r.success) {
    const issues = describeIssues(r.error, input);
    throw new ColdtraceError(
      "CT_CFG_INVALID",
      `lots.policy: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      { issues },
    );
  }
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
