/**
 * The ProbeDriver contract every driver passes (aedes-persistence style): one result per
 * probe, read() never rejects — a silent peer or a closed port is a comm_error carrying
 * CT_PROBE_READ — and isOpen() follows open()/close().
 */
import { describe, expect, it } from "vitest";
import type { ProbeDriver } from "../../src/drivers/types.ts";

export interface DriverFixture<P extends { id: string }> {
  driver: ProbeDriver<P>;
  probes: P[];
  /** Makes the peer answer normally (a value of okTempC for every probe). */
  healthy(): Promise<void>;
  /** Makes the peer stop answering. */
  silence(): Promise<void>;
  okTempC: number;
  close(): Promise<void>;
}

export function probeDriverContract<P extends { id: string }>(
  name: string,
  make: () => Promise<DriverFixture<P>>,
) {
  describe(`ProbeDriver contract: ${name}`, () => {
    it("reads every probe, never rejects, and follows open/close", async () => {
      const f = await make();
      try {
        expect(f.driver.isOpen()).toBe(false);
        await f.driver.open();
        expect(f.driver.isOpen()).toBe(true);

        await f.healthy();
        const ok = await f.driver.read(f.probes);
        expect(ok.map((r) => r.probeId).sort()).toEqual(f.probes.map((p) => p.id).sort());
        expect(ok.every((r) => r.quality === "ok" && r.tempC === f.okTempC)).toBe(true);

        await f.silence();
        const silent = await f.driver.read(f.probes);
        expect(silent).toHaveLength(f.probes.length);
        for (const r of silent) {
          expect(r).toMatchObject({
            quality: "comm_error",
            tempC: null,
            error: expect.objectContaining({ code: "CT_PROBE_READ" }),
          });
        }

        await f.driver.close();
        expect(f.driver.isOpen()).toBe(false);
        const closed = await f.driver.read(f.probes);
        expect(closed.every((r) => r.quality === "comm_error")).toBe(true);
      } finally {
        await f.driver.close();
        await f.close();
      }
    });
  });
}
