/**
 * The movements import as Chinese ERPs export files: CSV in UTF-8 with or without a BOM, CSV in
 * GB18030/GBK (Excel's "CSV" on a Chinese Windows), and .xlsx. The same movements, Chinese
 * product names and clerks included, must come out of all of them, parsed by csv-parse,
 * iconv-lite and exceljs, with row/column error reports as before.
 *
 * The .xlsx is written by exceljs here, the way an ERP writes one: typed cells (numbers, a date
 * cell in local time), shared strings, a header row.
 */
import ExcelJS from "exceljs";
import Fastify from "fastify";
import iconv from "iconv-lite";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsv, readMovementsCsv, readMovementsTable } from "../../src/lots/csv.ts";
import { decodeMovementsFile, decodeText, XLSX_MEDIA_TYPE } from "../../src/lots/import-file.ts";
import { createLotService, type LotService, lotsPlugin } from "../../src/lots/index.ts";
import { createSqliteReadingStore, openSqlite } from "../../src/storage/sqlite.ts";

const HEADER =
  "movementId,kind,siteId,occurredAt,lotId,sku,productName,quantity,fromUnitId,toUnitId,reference,actor";
const PRODUCT = "超敏C反应蛋白测定试剂盒（胶乳增强免疫比浊法）";
/** The ERP's export, as UTF-8 text. Times in +08:00 as the ERP in Shanghai writes them. */
function exportRows(prefix: string): string[][] {
  return [
    [
      `${prefix}-1`,
      "receive",
      "store-12",
      "2026-11-20T08:00:00+08:00",
      "L2026/0412",
      "REAG-CRP-100",
      PRODUCT,
      "10",
      "",
      "fridge-2",
      "入库单-4411",
      "store-12/王丽",
    ],
    [
      `${prefix}-2`,
      "load",
      "store-12",
      "2026-11-21T09:30:00+08:00",
      "L2026/0412",
      "REAG-CRP-100",
      PRODUCT,
      "4",
      "fridge-2",
      "box-7",
      "调拨单-5521",
      "store-12/王丽",
    ],
    [
      `${prefix}-3`,
      "dispense",
      "store-12",
      "2026-11-21T10:00:00+08:00",
      "批号 A/7",
      "REAG-HBA-50",
      '糖化血红蛋白检测试剂, "HbA1c"',
      "2",
      "fridge-2",
      "",
      "",
      "store-12/赵敏",
    ],
  ];
}
const quote = (f: string) => (/[",\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f);
const toCsv = (rows: string[][], eol = "\r\n") =>
  [HEADER, ...rows.map((r) => r.map(quote).join(","))].join(eol) + eol;

async function toXlsx(rows: string[][]): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet("出入库明细");
  ws.addRow(HEADER.split(","));
  for (const r of rows) {
    // Typed cells, as an ERP writes them: quantity a number, the time a date cell (wall clock,
    // Asia/Shanghai; exceljs stores a Date's UTC fields as the cell's wall clock).
    const local = new Date(Date.parse(r[3]!) + 8 * 3_600_000);
    ws.addRow([
      r[0],
      r[1],
      r[2],
      local,
      r[4],
      r[5],
      r[6],
      Number(r[7]),
      r[8] || null,
      r[9] || null,
      r[10] || null,
      r[11],
    ]);
  }
  ws.getColumn(4).numFmt = "yyyy-mm-dd hh:mm:ss";
  return Buffer.from(await wb.xlsx.writeBuffer());
}

describe("movements file decoding", () => {
  it("reads the same movements from UTF-8 (with and without BOM), GB18030 and .xlsx", async () => {
    const rows = exportRows("erp-twin");
    const utf8 = Buffer.from(toCsv(rows), "utf8");
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8]);
    const gb = iconv.encode(toCsv(rows), "gb18030");
    // Sanity: the GB18030 bytes really are not UTF-8 (the test would prove nothing otherwise).
    expect(() => new TextDecoder("utf-8", { fatal: true }).decode(gb)).toThrow();
    const xlsx = await toXlsx(rows);

    const twin = readMovementsTable((await decodeMovementsFile(utf8, "text/csv")).table);
    expect(twin.errors).toEqual([]);
    expect(twin.movements.map((x) => x.m)).toHaveLength(3);
    expect(twin.movements[0]!.m).toMatchObject({
      movementId: "erp-twin-1",
      occurredAt: Date.UTC(2026, 10, 20, 0, 0, 0),
      reference: "入库单-4411",
      actor: "store-12/王丽",
      lotId: "L2026/0412",
    });
    for (const [name, bytes, type, format] of [
      ["BOM", bom, "text/csv", "utf-8"],
      ["GB18030 declared", gb, "text/csv; charset=GB18030", "gb18030"],
      ["GBK declared", gb, "text/csv; charset=gbk", "gb18030"],
      ["GB18030 detected", gb, "text/csv", "gb18030"],
    ] as const) {
      const file = await decodeMovementsFile(bytes, type);
      expect(file.format, name).toBe(format);
      const parsed = readMovementsTable(file.table);
      expect(parsed.errors, name).toEqual([]);
      expect(parsed.movements, name).toEqual(twin.movements);
    }
    const sheet = await decodeMovementsFile(xlsx, XLSX_MEDIA_TYPE);
    expect(sheet.format).toBe("xlsx");
    // A date cell has no zone: without one the row is refused, naming the column …
    const noZone = readMovementsTable(sheet.table);
    expect(noZone.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ row: 2, column: "occurredAt", value: "2026-11-20 08:00:00" }),
      ]),
    );
    expect(noZone.errors[0]!.message).toContain("timeZone");
    // … and with the ERP's zone it is the same movements as the CSV twin.
    const withZone = readMovementsTable(sheet.table, { timeZone: "Asia/Shanghai" });
    expect(withZone.errors).toEqual([]);
    expect(withZone.movements).toEqual(twin.movements);
    // Detected by its ZIP signature too, whatever the upload says.
    expect((await decodeMovementsFile(xlsx, "application/octet-stream")).format).toBe("xlsx");
  });

  it("keeps the row and column error reports of the hand-written parser", () => {
    // Quoted field over two lines, CRLF and LF mixed, a blank line, a BOM.
    const table = parseCsv('\uFEFFa,b\r\n1,"x\ny"\n\n3,4\n5,"un\nterminated\n');
    expect(table.records).toEqual([
      { row: 1, fields: ["a", "b"] },
      { row: 2, fields: ["1", "x\ny"] },
      { row: 5, fields: ["3", "4"] },
    ]);
    expect(table.error).toEqual({ row: 6, column: "", message: "unterminated quoted field" });
    // A quote inside an unquoted field is a character; doubled quotes inside quotes are one.
    expect(parseCsv('a,b\n1,ab"c\n"say ""hi""",2\n').records.map((r) => r.fields)).toEqual([
      ["a", "b"],
      ["1", 'ab"c'],
      ['say "hi"', "2"],
    ]);
    const bad = readMovementsCsv(
      `${HEADER},colour\nx,receive,store-12,2026-11-20T08:00:00Z,L1,S,,1,,fridge-2,,,\n`,
    );
    expect(bad.errors).toEqual([
      { row: 1, column: "colour", message: expect.stringContaining("unknown column") },
    ]);
    const rows = readMovementsCsv(
      [
        HEADER,
        "a,receive,store-12,2026-11-20 08:00,L1,S,,1,,fridge-2,,",
        "b,receive,store-12,2026-11-20T08:00:00Z,L1,S,,1,,fridge-2",
        `c,receive,store-12,2026-11-20T08:00:00Z,L1,S,${"名".repeat(201)},1,,fridge-2,,`,
      ].join("\n"),
    );
    expect(rows.errors).toEqual([
      expect.objectContaining({ row: 2, column: "occurredAt", value: "2026-11-20 08:00" }),
      { row: 3, column: "", message: "expected 12 fields, found 10" },
      { row: 4, column: "productName", message: "must be at most 200 characters" },
    ]);
  });

  it("turns zone-less local times into UTC with the import's time zone, and refuses an unknown zone", () => {
    const csv = `${HEADER}\na,receive,store-12,2026/11/20 08:00:00,L1,S,,1,,fridge-2,,\n`;
    const r = readMovementsCsv(csv, { timeZone: "Asia/Shanghai" });
    expect(r.errors).toEqual([]);
    expect(r.movements[0]!.m.occurredAt).toBe(Date.UTC(2026, 10, 20, 0, 0, 0));
    // Across a DST change: 2026-03-29 03:30 in Berlin is CEST (+02:00).
    const berlin = readMovementsCsv(csv.replace("2026/11/20 08:00:00", "2026-03-29 03:30"), {
      timeZone: "Europe/Berlin",
    });
    expect(berlin.movements[0]!.m.occurredAt).toBe(Date.UTC(2026, 2, 29, 1, 30));
    expect(readMovementsCsv(csv, { timeZone: "Mars/Olympus" }).errors).toEqual([
      expect.objectContaining({ row: 1, column: "occurredAt", value: "Mars/Olympus" }),
    ]);
    expect(readMovementsCsv(csv.replace("2026/11/20", "2026/02/30"), { timeZone: "UTC" }).errors).toEqual([
      expect.objectContaining({ row: 2, column: "occurredAt", message: "is not a valid date and time" }),
    ]);
  });

  it("refuses a charset it does not know, and bytes that are not what the charset says", () => {
    expect(() => decodeText(Buffer.from("a"), "text/csv; charset=latin1")).toThrow(/not supported/);
    expect(() => decodeText(iconv.encode("名", "gb18030"), "text/csv; charset=utf-8")).toThrow(
      /not valid UTF-8/,
    );
  });
});

describe("POST /lots/movements/import with ERP files", () => {
  let service: LotService;
  const app = Fastify();
  beforeAll(async () => {
    service = await createLotService({
      db: { kind: "sqlite", db: openSqlite(":memory:") },
      readings: await createSqliteReadingStore(openSqlite(":memory:")),
      clock: { now: () => Date.UTC(2026, 11, 1) },
      log: pino({ level: "silent" }),
      unitLimits: () => ({ high: 8, low: 2 }),
    });
    await app.register(lotsPlugin(service));
    // #14: movements name SKUs of the product master and take stock the ledger holds, so the
    // store has its products and the lot the export dispenses from.
    for (const sku of ["REAG-CRP-100", "REAG-HBA-50"])
      await service.upsertProduct({ sku, name: sku, storageClass: "2-8C" });
    await service.recordMovement({
      v: 1,
      movementId: "setup-receive-a7",
      kind: "receive",
      siteId: "store-12",
      occurredAt: Date.UTC(2026, 10, 19),
      lotId: "批号 A/7",
      sku: "REAG-HBA-50",
      quantity: 10,
      toUnitId: "fridge-2",
    });
  });
  afterAll(() => app.close());

  it("imports a GB18030 CSV and an .xlsx export as the same movements as their UTF-8 twin", async () => {
    const post = (payload: Buffer, type: string, query = "") =>
      app.inject({
        method: "POST",
        url: `/lots/movements/import${query}`,
        headers: { "content-type": type },
        payload,
      });
    const utf8 = await post(Buffer.from(toCsv(exportRows("r-utf8")), "utf8"), "text/csv");
    expect(utf8.json()).toMatchObject({ ok: true, imported: 3 });
    const before = await service.occupancy("fridge-2", Date.UTC(2026, 10, 21, 3));

    // The twin files carry the same rows; re-sending them is recognised as duplicates …
    const gb = await post(iconv.encode(toCsv(exportRows("r-utf8"), "\n"), "gb18030"), "text/csv");
    expect(gb.statusCode).toBe(200);
    expect(gb.json()).toMatchObject({ ok: true, rows: 3, imported: 0, duplicates: 3 });
    const sheet = await post(
      await toXlsx(exportRows("r-utf8")),
      XLSX_MEDIA_TYPE,
      "?timeZone=Asia%2FShanghai",
    );
    expect(sheet.json()).toMatchObject({ ok: true, rows: 3, imported: 0, duplicates: 3 });
    // … which would be an error had any value differed (a Chinese name garbled, a time shifted).
    const shifted = await post(await toXlsx(exportRows("r-utf8")), XLSX_MEDIA_TYPE, "?timeZone=UTC");
    expect(shifted.statusCode).toBe(422);
    expect(shifted.json().errors[0]).toMatchObject({ row: 2, column: "movementId" });
    expect(await service.occupancy("fridge-2", Date.UTC(2026, 10, 21, 3))).toEqual(before);

    // New ids, GB18030 only: imported with the lot number and clerk intact.
    const fresh = await post(iconv.encode(toCsv(exportRows("r-gb")), "gb18030"), "text/csv; charset=GBK");
    expect(fresh.json()).toMatchObject({ ok: true, imported: 3 });
    const none = await post(Buffer.from("not,a,sheet"), XLSX_MEDIA_TYPE);
    expect(none.statusCode).toBe(422);
    expect(none.json().errors[0]).toMatchObject({ row: 1, column: "" });
    expect(none.json().errors[0].message).toContain(".xlsx");
    const badQuery = await post(Buffer.from(toCsv([])), "text/csv", "?tz=x");
    expect(badQuery.statusCode).toBe(400);
    expect(badQuery.json().message).toContain("import query: ");
  });
});
