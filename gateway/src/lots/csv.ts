/**
 * CSV import of an ERP movements export (docs/integrator/movements-csv.md): RFC 4180 parsing
 * (quoted fields, doubled quotes, CRLF or LF), a header naming the columns, every row checked
 * against the contract `movement` schema. Errors name the file row (the header is row 1), the
 * column and what was wrong. The caller imports nothing when any row is bad.
 */
import { describeIssues, type Movement, movement } from "@coldtrace/protocol";

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
] as const;
const required = new Set(["movementId", "kind", "siteId", "occurredAt", "lotId", "sku", "quantity"]);

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

/** Split CSV text into records of fields, with the file row each record starts on. */
export function parseCsv(text: string): {
  records: Array<{ row: number; fields: string[] }>;
  error?: CsvRowError;
} {
  const records: Array<{ row: number; fields: string[] }> = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let row = 1;
  let recordRow = 1;
  let i = 0;
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // Excel's UTF-8 BOM
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === "")) records.push({ row: recordRow, fields });
    fields = [];
    field = "";
  };
  while (i < s.length) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === "\n") row++;
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === "") {
      quoted = true;
      i++;
    } else if (c === ",") {
      fields.push(field);
      field = "";
      i++;
    } else if (c === "\r" && s[i + 1] === "\n") {
      i++;
    } else if (c === "\n") {
      endRecord();
      row++;
      recordRow = row;
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (quoted) return { records, error: { row: recordRow, column: "", message: "unterminated quoted field" } };
  if (field !== "" || fields.length > 0) endRecord();
  return { records };
}

/** ISO 8601 with an explicit zone, or integer epoch milliseconds. */
function parseTime(value: string): number | string {
  if (/^\d+$/.test(value)) return Number(value);
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  return value;
}

/** Parse and validate a whole file. `movements` is complete only when `errors` is empty. */
export function readMovementsCsv(text: string): {
  movements: Array<{ row: number; m: Movement }>;
  errors: CsvRowError[];
  rows: number;
} {
  const errors: CsvRowError[] = [];
  const parsed = parseCsv(text);
  if (parsed.error) errors.push(parsed.error);
  const [header, ...data] = parsed.records;
  if (!header)
    return {
      movements: [],
      errors: [{ row: 1, column: "", message: "file is empty: expected a header row" }],
      rows: 0,
    };
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
    names.forEach((name, i) => {
      const value = rec.fields[i]!.trim();
      if (value === "") return;
      if (name === "occurredAt") raw[name] = parseTime(value);
      else if (name === "quantity") raw[name] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      else raw[name] = value;
    });
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
