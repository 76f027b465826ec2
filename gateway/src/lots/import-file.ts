/**
 * Bytes of an ERP export → the rows of a movements table, as Chinese ERPs export them:
 *
 *   .xlsx (ZIP signature, or the spreadsheet media type) ─▶ exceljs, first worksheet
 *   text:  charset= of the content type, else
 *          UTF-8 BOM ─▶ UTF-8 · valid UTF-8 ─▶ UTF-8 · otherwise GB18030 (which contains GBK
 *          and GB2312: what Excel's "CSV" writes on a Chinese Windows) ─▶ iconv-lite ─▶ csv-parse
 *
 * Row numbers are what a person sees: the file line for CSV, the sheet row for .xlsx.
 */
import ExcelJS from "exceljs";
import iconv from "iconv-lite";
import { type MovementsTable, parseCsv } from "./csv.ts";

export const XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/** Media types the import route accepts. */
export const importMediaTypes = ["text/csv", "text/plain", XLSX_MEDIA_TYPE, "application/octet-stream"];

export interface DecodedFile {
  table: MovementsTable;
  /** What was read: `xlsx`, or the text encoding used. */
  format: "xlsx" | "utf-8" | "gb18030";
}

const ZIP_SIGNATURE = [0x50, 0x4b, 0x03, 0x04]; // "PK\3\4": an .xlsx is a ZIP package (ECMA-376 Part 2)

function isZip(bytes: Uint8Array): boolean {
  return ZIP_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** `text/csv; charset=GBK` → `gbk`. */
function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? "");
  return m?.[1]?.toLowerCase();
}

const GB_CHARSETS = new Set(["gb18030", "gbk", "gb2312", "cp936", "x-gbk", "euc-cn"]);

export class UnsupportedCharsetError extends Error {}

/** Decode text bytes: the declared charset, else UTF-8 when valid, else GB18030. */
export function decodeText(
  bytes: Uint8Array,
  contentType?: string,
): { text: string; format: "utf-8" | "gb18030" } {
  const declared = charsetOf(contentType);
  if (declared !== undefined && GB_CHARSETS.has(declared)) {
    return { text: iconv.decode(Buffer.from(bytes), "gb18030"), format: "gb18030" };
  }
  if (declared !== undefined && declared !== "utf-8" && declared !== "utf8") {
    throw new UnsupportedCharsetError(
      `charset ${JSON.stringify(declared)} is not supported; send UTF-8 or GB18030 (GBK)`,
    );
  }
  try {
    // fatal: a GBK byte sequence is not silently turned into U+FFFD.
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), format: "utf-8" };
  } catch {
    if (declared !== undefined) throw new UnsupportedCharsetError("body is not valid UTF-8 as declared");
    return { text: iconv.decode(Buffer.from(bytes), "gb18030"), format: "gb18030" };
  }
}

/** A cell as the text a person sees in it. Dates come back as zone-less wall-clock times. */
function cellText(value: ExcelJS.CellValue): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) {
    // exceljs reads a date serial as if it were UTC: the ISO string without `Z` is the wall clock.
    return value
      .toISOString()
      .replace(/\.000Z$|Z$/, "")
      .replace("T", " ");
  }
  if (typeof value === "object") {
    if ("richText" in value) return value.richText.map((r) => r.text).join("");
    if ("result" in value) return cellText((value as { result?: ExcelJS.CellValue }).result ?? null);
    if ("text" in value) return String(value.text);
    if ("error" in value) return String(value.error);
    return "";
  }
  return String(value);
}

async function readXlsx(bytes: Uint8Array): Promise<MovementsTable> {
  const workbook = new ExcelJS.Workbook();
  try {
    await workbook.xlsx.load(Buffer.from(bytes) as never);
  } catch (err) {
    return {
      records: [],
      error: { row: 1, column: "", message: `not a readable .xlsx workbook: ${(err as Error).message}` },
    };
  }
  const sheet = workbook.worksheets[0];
  if (!sheet) return { records: [] };
  const width = sheet.getRow(1).cellCount;
  const records: MovementsTable["records"] = [];
  sheet.eachRow({ includeEmpty: false }, (row, rowNumber) => {
    const count = Math.max(width, row.cellCount);
    const fields: string[] = [];
    for (let c = 1; c <= count; c++) fields.push(cellText(row.getCell(c).value));
    // Trailing empty cells beyond the header are formatting, not fields.
    while (fields.length > width && fields.at(-1) === "") fields.pop();
    if (fields.every((f) => f.trim() === "")) return;
    records.push({ row: rowNumber, fields });
  });
  return { records };
}

/** Read an uploaded movements file. Never throws on bad content: problems come back as a row error. */
export async function decodeMovementsFile(bytes: Uint8Array, contentType?: string): Promise<DecodedFile> {
  const media = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (media === XLSX_MEDIA_TYPE || isZip(bytes)) return { table: await readXlsx(bytes), format: "xlsx" };
  try {
    const { text, format } = decodeText(bytes, contentType);
    return { table: parseCsv(text), format };
  } catch (err) {
    if (!(err instanceof UnsupportedCharsetError)) throw err;
    return { table: { records: [], error: { row: 1, column: "", message: err.message } }, format: "utf-8" };
  }
}
