/**
 * Lots: occupancy ledger from movements, exposure and stability budgets, quarantine policy and
 * states, eligibility for the transfer planner (REST plugin + retained topics via the outbox).
 * See docs/qa/quarantine.md and docs/integrator/planner.md.
 */
export { type CsvImportReport, type CsvRowError, csvColumns, parseCsv, readMovementsCsv } from "./csv.ts";
export { ledgerViolations, lotIntervals, type OccupancyInterval, OPEN_END, traceExposure } from "./ledger.ts";
export * from "./model.ts";
export { type LotsExtension, type LotsExtensionOptions, lotsExtension } from "./module.ts";
export { lotsPlugin } from "./plugin.ts";
export { decide, defaultPolicy, parsePolicy, type QuarantinePolicy, quarantinePolicy } from "./policy.ts";
export {
  createLotService,
  type ExposureSummary,
  type LotExposure,
  type LotHold,
  type LotService,
  type LotServiceDeps,
  type OccupancyRow,
  type SummarizeExposure,
  type TransferVerdict,
} from "./service.ts";
export { type HoldStatus, type LotCause, LotStore } from "./store.ts";
