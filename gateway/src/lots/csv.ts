/**
 * The movements import (docs/integrator/movements-csv.md): a table of rows — from a CSV file
 * parsed by csv-parse (RFC 4180: quoted fields, doubled quotes, CRLF or LF), or a spreadsheet
 * read by ./import-file.ts — with a header naming the columns, every row checked against the
 * contract `movement` schema. Errors name the file row (the header is row 1), the column and
 * what was wrong. The caller imports nothing when any row is bad.
 *
 *   bytes ─▶ import-file.ts (xlsx? charset?) ─▶ rows ─▶ readMovementsTable ─▶ movements | errors
 *   text  ─▶ parseCsv ───────────────────────────────┘
 */
import { describeIssues, isTimeZone, type Movement, movement, wallClockToEpoch } from "@coldtrace/protocol";
import { CsvError, parse } from "csv-parse/sync";

export const csvColumns = [
  "movementId",
  "kind",
  "siteId",
  "occurredAt",
  "lotId",
  "sku",
  "quantity",
  "fromUnitId",
  "toUnitId",
  "reference",
  "actor",
  // Informational: ERP exports name the product beside its code so a person can read the file.
  // Checked for length, never recorded (the product master holds names: PUT /lots/products).
  "productName",
] as const;
const required = new Set(["movementId", "kind", "siteId", "occurredAt", "lotId", "sku", "quantity"]);
const informational = new Set(["productName"]);
const PRODUCT_NAME_MAX = 200;

export interface CsvRowError {
  /** File row, 1-based; the header is row 1. */
  row: number;
  /** Column name, or "" for a whole-row or whole-file problem. */
  column: string;
  message: string;
  value?: string;
}

export interface CsvImportReport {
  ok: boolean;
  /** Data rows in the file. */
  rows: number;
  /** Movements newly recorded (0 when the file was rejected). */
  imported: number;
  /** Rows whose movementId was already recorded with the same content. */
  duplicates: number;
  errors: CsvRowError[];
}

/** Rows of a file, each with the file row it starts on (a spreadsheet's row number). */
export interface MovementsTable {
  records: Array<{ row: number; fields: string[] }>;
  /** A problem that stopped reading part of the file (unterminated quote, unreadable sheet). */
  error?: CsvRowError;
}

export interface ImportOptions {
  /**
   * IANA time zone (e.g. `Asia/Shanghai`) for times written without a zone, as Chinese ERPs
   * export them (`2026-11-20 08:00:00`) and as spreadsheet date cells always are. Without it
   * such a time is an error on its row: a wrong zone would misplace stock by hours.
   */
  timeZone?: string;
}

const NEWLINE = /\r\n|\n|\r/g;

/** Split CSV text into records of fields, with the file row each record starts on. */
export function parseCsv(text: string): MovementsTable {
  const records: MovementsTable["records"] = [];
  let lastLine = 0;
  let error: CsvRowError | undefined;
  let parsed: Array<{ record: string[]; info: { lines: number }; raw: string }>;
  try {
    parsed = parse(text, {
      bom: true, // Excel's UTF-8 BOM
      info: true,
      raw: true,
      record_delimiter: ["\r\n", "\n", "\r"],
      relax_column_count: true, // a wrong field count is reported per row below
      relax_quotes: true, // a quote inside an unquoted field is a character, as in RFC 4180 readers
      skip_empty_lines: true,
      skip_records_with_error: true,
      on_record: (record, context) => {
        lastLine = context.lines;
        return record;
      },
      on_skip: (err) => {
        if (err)
          error ??= { row: nextRecordLine(text, lastLine), column: "", message: describeCsvError(err) };
      },
    }) as never;
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    return { records, error: { row: 1, column: "", message: describeCsvError(err) } };
  }
  for (const { record, info, raw } of parsed) {
    // info.lines is the line the record ends on; a quoted field may span lines.
    const body = raw.replace(/^(?:\r\n|\n|\r)+/, "").replace(/(?:\r\n|\n|\r)$/, "");
    records.push({ row: info.lines - (body.match(NEWLINE)?.length ?? 0), fields: record });
  }
  return error ? { records, error } : { records };
}

/** The first non-blank line after `line` (1-based): where the next record starts. */
function nextRecordLine(text: string, line: number): number {
  const lines = text.split(NEWLINE);
  let next = line + 1;
  while (next <= lines.length && lines[next - 1]!.trim() === "") next++;
  return next;
}

function describeCsvError(err: CsvError): string {
  if (err.code === "CSV_QUOTE_NOT_CLOSED") return "unterminated quoted field";
  // csv-parse messages are "Title: detail"; keep the detail, it names the line.
  return err.message.replace(/^[^:]*:\s*/, "");
}

const ISO_ZONED = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const LOCAL = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;

type TimeResult = { ok: number } | { error: string };

/** ISO 8601 with an explicit zone, integer epoch milliseconds, or a local time with `timeZone`. */
function parseTime(value: string, opts: ImportOptions): TimeResult | undefined {
  if (/^\d+$/.test(value)) return { ok: Number(value) };
  if (ISO_ZONED.test(value)) {
    const t = Date.parse(value.replace(" ", "T"));
    if (!Number.isNaN(t)) return { ok: t };
  }
  const m = LOCAL.exec(value);
  if (!m) return undefined; // not a time at all: the schema reports it
  if (!opts.timeZone) {
    return {
      error: `has no time zone: write it with one (2026-11-20T08:00:00+08:00) or import with timeZone (e.g. ?timeZone=Asia/Shanghai)`,
    };
  }
  const [, y, mo, d, h = "0", mi = "0", s = "0", ms = "0"] = m;
  const wall = Date.UTC(+y!, +mo! - 1, +d!, +h, +mi, +s, +ms.padEnd(3, "0"));
  const check = new Date(wall);
  if (check.getUTCMonth() !== +mo! - 1 || check.getUTCDate() !== +d! || +h > 23) {
    return { error: "is not a valid date and time" };
  }
  return { ok: wallClockToEpoch(wall, opts.timeZone) };
}

/** Check an IANA zone name once, before any row uses it. */
export function checkTimeZone(timeZone: string): string | undefined {
  return isTimeZone(timeZone)
    ? undefined
    : `unknown time zone ${JSON.stringify(timeZone)}; expected an IANA name such as Asia/Shanghai`;
}

/** Parse and validate a whole CSV file. `movements` is complete only when `errors` is empty. */
export function readMovementsCsv(text: string, opts: ImportOptions = {}): ParsedMovements {
  return readMovementsTable(parseCsv(text), opts);
}

export interface ParsedMovements {
  movements: Array<{ row: number; m: Movement }>;
  errors: CsvRowError[];
  rows: number;
}

/** Validate a table's header and rows. `movements` is complete only when `errors` is empty. */
export function readMovementsTable(table: MovementsTable, opts: ImportOptions = {}): ParsedMovements {
  const errors: CsvRowError[] = [];
  if (table.error) errors.push(table.error);
  const [header, ...data] = table.records;
  if (!header)
    return {
      movements: [],
      errors: [...errors, { row: 1, column: "", message: "file is empty: expected a header row" }],
      rows: 0,
    };
  if (opts.timeZone !== undefined) {
    const bad = checkTimeZone(opts.timeZone);
    if (bad) errors.push({ row: 1, column: "occurredAt", message: bad, value: opts.timeZone });
  }
  const names = header.fields.map((f) => f.trim());
  for (const name of names) {
    if (!(csvColumns as readonly string[]).includes(name)) {
      errors.push({
        row: header.row,
        column: name,
        message: `unknown column; expected some of ${csvColumns.join(", ")}`,
      });
    }
  }
  for (const name of required) {
    if (!names.includes(name))
      errors.push({ row: header.row, column: name, message: "required column is missing" });
  }
  if (errors.length > 0) return { movements: [], errors, rows: data.length };

  const movements: Array<{ row: number; m: Movement }> = [];
  const seen = new Map<string, { row: number; json: string }>();
  for (const rec of data) {
    if (rec.fields.length !== names.length) {
      errors.push({
        row: rec.row,
        column: "",
        message: `expected ${names.length} fields, found ${rec.fields.length}`,
      });
      continue;
    }
    const raw: Record<string, unknown> = { v: 1 };
    let rowOk = true;
    names.forEach((name, i) => {
      const value = rec.fields[i]!.trim();
      if (value === "") return;
      if (informational.has(name)) {
        if (value.length > PRODUCT_NAME_MAX) {
          errors.push({
            row: rec.row,
            column: name,
            message: `must be at most ${PRODUCT_NAME_MAX} characters`,
          });
          rowOk = false;
        }
        return;
      }
      if (name === "occurredAt") {
        const t = parseTime(value, opts);
        if (t && "error" in t) {
          errors.push({ row: rec.row, column: name, message: t.error, value });
          rowOk = false;
        }
        raw[name] = t && "ok" in t ? t.ok : value;
      } else if (name === "quantity") raw[name] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      else raw[name] = value;
    });
    if (!rowOk) continue;
    const r = movement.safeParse(raw);
    if (!r.success) {
      for (const issue of describeIssues(r.error, raw)) {
        const column = issue.path.split(/[.[]/)[0] ?? "";
        const at = names.indexOf(column);
        errors.push({
          row: rec.row,
          column,
          message: issue.message,
          ...(at >= 0 ? { value: rec.fields[at] } : {}),
        });
      }
      continue;
    }
    const json = JSON.stringify(r.data);
    const prev = seen.get(r.data.movementId);
    if (prev && prev.json !== json) {
      errors.push({
        row: rec.row,
        column: "movementId",
        message: `repeats the movementId of row ${prev.row} with different content`,
        value: r.data.movementId,
      });
      continue;
    }
    if (prev) continue;
    seen.set(r.data.movementId, { row: rec.row, json });
    movements.push({ row: rec.row, m: r.data });
  }
  return { movements, errors, rows: data.length };
}
