/**
 * A unit's temperatures with uPlot: one line per probe, the limits drawn (range solid, action
 * dashed, each labelled), excursions shaded and labelled, axis times in the site's zone.
 * Zoom from 1 hour to 30 days with the buttons or by dragging across the chart; the data is
 * read at a resolution that fits the window (raw readings, or min/mean/max buckets from the
 * gateway's downsampling), so 30 days stay a few thousand points.
 *
 *   window ─▶ resolution(window, interval) ─▶ GET /units/{id}/readings[?bucketMs] ─▶ aligned data
 *   live readings of this unit ─▶ appended (raw) or a refresh (buckets), when the window ends now
 */
import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { api, type Excursion, type Limits, qs, type Reading, type ReadingsResponse } from "../api.ts";
import { celsius, dateTime } from "../format.ts";
import { language, t } from "../i18n.ts";
import { on } from "../live.ts";
import { ErrorText } from "./page.tsx";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
export const PRESETS = [
  { key: "1h", ms: HOUR },
  { key: "6h", ms: 6 * HOUR },
  { key: "24h", ms: DAY },
  { key: "7d", ms: 7 * DAY },
  { key: "30d", ms: 30 * DAY },
] as const;

/** Raw readings up to this many per probe; beyond, buckets of a nice size. */
const MAX_RAW_PER_PROBE = 2000;
const TARGET_BUCKETS = 1000;
const NICE_BUCKETS = [
  MIN,
  2 * MIN,
  5 * MIN,
  10 * MIN,
  15 * MIN,
  30 * MIN,
  HOUR,
  2 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
];

export function resolution(windowMs: number, intervalMs: number): number | undefined {
  if (windowMs / intervalMs <= MAX_RAW_PER_PROBE) return undefined;
  const want = windowMs / TARGET_BUCKETS;
  return NICE_BUCKETS.find((b) => b >= want) ?? DAY;
}

const COLORS = ["#1f5fbf", "#b3541e", "#2e7d32", "#7b3fa0", "#00838f", "#6d4c41"];

export interface ChartData {
  /** Seconds (uPlot's unit). */
  x: number[];
  /** Per probe: values (raw) or means (buckets), and min/max for buckets. */
  series: { probeId: string; y: (number | null)[]; min?: (number | null)[]; max?: (number | null)[] }[];
  bucketMs: number | undefined;
}

/** Align readings or buckets of several probes on one time axis (uPlot's data layout). */
export function align(
  res: ReadingsResponse,
  probeIds: readonly string[],
  bucketMs: number | undefined,
): ChartData {
  const rows = res.buckets
    ? res.buckets.map((b) => ({ t: b.start, probeId: b.probeId, v: b.mean, min: b.min, max: b.max }))
    : (res.readings ?? []).map((r) => ({
        t: r.observedAt,
        probeId: r.probeId,
        v: r.tempC,
        min: null,
        max: null,
      }));
  const ids = [...new Set([...probeIds, ...rows.map((r) => r.probeId)])].sort();
  const times = [...new Set(rows.map((r) => r.t))].sort((a, b) => a - b);
  const index = new Map(times.map((tm, i) => [tm, i]));
  const series = ids.map((probeId) => ({
    probeId,
    y: new Array<number | null>(times.length).fill(null),
    ...(bucketMs
      ? {
          min: new Array<number | null>(times.length).fill(null),
          max: new Array<number | null>(times.length).fill(null),
        }
      : {}),
  }));
  const byId = new Map(series.map((s) => [s.probeId, s]));
  for (const r of rows) {
    const s = byId.get(r.probeId);
    const i = index.get(r.t);
    if (!s || i === undefined) continue;
    s.y[i] = r.v;
    if (s.min && s.max) {
      s.min[i] = r.min;
      s.max[i] = r.max;
    }
  }
  return { x: times.map((tm) => tm / 1000), series, bucketMs };
}

export interface ChartLimits {
  range: Limits;
  action: Limits;
}

/** Options for uPlot; exported for the chart benchmark, which draws 170,000 points with them. */
export function chartOptions(p: {
  width: number;
  height: number;
  data: ChartData;
  timeZone: string;
  limits: ChartLimits;
  /** Read at every draw, so new excursions show without rebuilding the chart. */
  excursions: () => readonly Excursion[];
  onZoom?: (fromMs: number, toMs: number) => void;
}): uPlot.Options {
  const { timeZone, limits } = p;
  const fmt = (opts: Intl.DateTimeFormatOptions) =>
    new Intl.DateTimeFormat(language.value, { timeZone, hourCycle: "h23", ...opts });
  const timeFmt = fmt({ hour: "2-digit", minute: "2-digit" });
  const dayFmt = fmt({ month: "short", day: "numeric" });
  const dayTimeFmt = fmt({ month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const series: uPlot.Series[] = [
    { label: t("chart.time"), value: (_u, v) => (v === null ? "—" : dateTime(v * 1000, timeZone)) },
  ];
  const bands: uPlot.Band[] = [];
  p.data.series.forEach((s, i) => {
    const stroke = COLORS[i % COLORS.length] as string;
    series.push({
      label: s.probeId,
      stroke,
      width: 1.5,
      dash: i % 2 === 1 ? [6, 3] : [],
      value: (_u, v) => celsius(v as number | null),
      spanGaps: false,
    });
    if (s.min && s.max) {
      const maxIdx = series.length;
      series.push({
        label: `${s.probeId} max`,
        stroke: `${stroke}55`,
        width: 0.5,
        show: true,
        value: (_u, v) => celsius(v as number | null),
      });
      series.push({
        label: `${s.probeId} min`,
        stroke: `${stroke}55`,
        width: 0.5,
        show: true,
        value: (_u, v) => celsius(v as number | null),
      });
      bands.push({ series: [maxIdx, maxIdx + 1], fill: `${stroke}22` });
    }
  });
  const lines: { v: number; label: string; dash: number[] }[] = [];
  const push = (v: number | null, label: string, dash: number[]) => {
    if (v !== null) lines.push({ v, label, dash });
  };
  push(limits.range.high, t("chart.rangeHigh", { value: limits.range.high }), []);
  push(limits.range.low, t("chart.rangeLow", { value: limits.range.low }), []);
  push(limits.action.high, t("chart.actionHigh", { value: limits.action.high }), [8, 4]);
  push(limits.action.low, t("chart.actionLow", { value: limits.action.low }), [8, 4]);
  const dpr = devicePixelRatio || 1;
  return {
    width: p.width,
    height: p.height,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), timeZone),
    series,
    bands,
    cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
    legend: { live: true },
    scales: {
      x: { time: true },
      y: {
        range: (_u, min, max) => {
          const all = [min, max, ...lines.map((l) => l.v)].filter((v) => Number.isFinite(v));
          const lo = Math.min(...all);
          const hi = Math.max(...all);
          const pad = Math.max(0.5, (hi - lo) * 0.08);
          return [lo - pad, hi + pad];
        },
      },
    },
    axes: [
      {
        values: (_u, splits, _ax, _space, incr) =>
          splits.map((s) => {
            const ms = s * 1000;
            if (incr >= 86_400) return dayFmt.format(ms);
            if (incr >= 3_600 * 6) return dayTimeFmt.format(ms);
            return timeFmt.format(ms);
          }),
      },
      { label: "°C", values: (_u, splits) => splits.map((v) => v.toFixed(1)) },
    ],
    hooks: {
      drawClear: [
        (u) => {
          // Excursions: a hatched band across the plot, with its tier written at the top.
          const ctx = u.ctx;
          const { top, height } = u.bbox;
          const [x0, x1] = [u.scales.x?.min ?? 0, u.scales.x?.max ?? 0];
          ctx.save();
          for (const e of p.excursions()) {
            const from = Math.max(e.startedAt / 1000, x0);
            const to = Math.min((e.endedAt ?? Date.now()) / 1000, x1);
            if (to <= from) continue;
            const left = u.valToPos(from, "x", true);
            const right = u.valToPos(to, "x", true);
            ctx.fillStyle = e.tier === "action" ? "rgba(198,40,40,0.16)" : "rgba(230,145,0,0.16)";
            ctx.fillRect(left, top, Math.max(1, right - left), height);
            ctx.strokeStyle = e.tier === "action" ? "rgba(198,40,40,0.35)" : "rgba(230,145,0,0.35)";
            ctx.lineWidth = 1;
            ctx.beginPath();
            for (let x = left - height; x < right; x += 10 * dpr) {
              ctx.moveTo(Math.max(x, left), top + height - Math.max(0, left - x));
              ctx.lineTo(Math.min(x + height, right), top + Math.max(0, x + height - right));
            }
            ctx.stroke();
            ctx.fillStyle = "#5a1010";
            ctx.font = `${12 * dpr}px system-ui, sans-serif`;
            // The label inside the band when it fits, else ending at the band's right edge.
            const label = t("chart.excursion", { tier: t(`tier.${e.tier}`) });
            const w = ctx.measureText(label).width;
            const x = Math.max(u.bbox.left + 2 * dpr, Math.min(left + 4 * dpr, right - w - 4 * dpr));
            ctx.fillText(label, x, top + 14 * dpr);
          }
          ctx.restore();
        },
      ],
      draw: [
        (u) => {
          // Limits: range solid, action dashed; each labelled with its value.
          const ctx = u.ctx;
          const { left, width } = u.bbox;
          ctx.save();
          ctx.font = `${11 * dpr}px system-ui, sans-serif`;
          for (const l of lines) {
            const y = u.valToPos(l.v, "y", true);
            ctx.strokeStyle = "#8b1a1a";
            ctx.lineWidth = 1.25 * dpr;
            ctx.setLineDash(l.dash.map((d) => d * dpr));
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + width, y);
            ctx.stroke();
            ctx.setLineDash([]);
            ctx.fillStyle = "#8b1a1a";
            const w = ctx.measureText(l.label).width;
            ctx.fillText(l.label, left + width - w - 4 * dpr, y - 4 * dpr);
          }
          ctx.restore();
        },
      ],
      setSelect: [
        (u) => {
          if (u.select.width < 4 || !p.onZoom) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          p.onZoom(from, to);
        },
      ],
    },
  };
}

export function toUplotData(d: ChartData): uPlot.AlignedData {
  const cols: (number | null)[][] = [];
  for (const s of d.series) {
    cols.push(s.y);
    if (s.min && s.max) cols.push(s.max, s.min);
  }
  return [d.x, ...cols] as uPlot.AlignedData;
}

export function UnitChart(props: {
  unitId: string;
  probeIds: readonly string[];
  intervalMs: number;
  timeZone: string;
  limits: ChartLimits;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const win = useSignal<{ from: number; to: number; live: boolean; preset?: string }>({
    from: Date.now() - DAY,
    to: Date.now(),
    live: true,
    preset: "24h",
  });
  const data = useSignal<ChartData | undefined>(undefined);
  const excursions = useSignal<Excursion[]>([]);
  const error = useSignal<string | undefined>(undefined);
  const loading = useSignal(false);

  /** The x range asked for (the window), applied after the data is set. */
  const scale = useRef<{ min: number; max: number } | undefined>(undefined);
  const shape = useRef("");

  const load = async () => {
    const w = win.value;
    const to = w.live ? Date.now() : w.to;
    const from = w.live ? to - (w.to - w.from) : w.from;
    const bucketMs = resolution(to - from, props.intervalMs);
    loading.value = true;
    try {
      const [res, xs] = await Promise.all([
        api<ReadingsResponse>(
          `/units/${encodeURIComponent(props.unitId)}/readings${qs({ from: Math.floor(from), to: Math.ceil(to) + 1, bucketMs, limit: bucketMs ? undefined : 100_000 })}`,
        ),
        api<Excursion[]>(
          `/excursions${qs({ unitId: props.unitId, from: Math.floor(from), to: Math.ceil(to) + 1 })}`,
        ),
      ]);
      excursions.value = xs;
      scale.current = { min: from / 1000, max: to / 1000 };
      // User Timing marks: where the time of a chart goes (the console benchmark reads them).
      performance.mark("ct:chart-fetched");
      data.value = align(res, props.probeIds, bucketMs);
      error.value = undefined;
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      loading.value = false;
    }
  };

  useEffect(() => {
    void load();
  }, [win.value, props.unitId]);

  // Build the plot when the series change (probes, raw or buckets, language, zone); otherwise
  // only hand it the new data, which is what keeps live updates cheap.
  useEffect(() => {
    const el = box.current;
    const d = data.value;
    if (!el || !d) return;
    const key = JSON.stringify([
      d.series.map((x) => x.probeId),
      d.bucketMs ?? 0,
      language.value,
      props.timeZone,
    ]);
    const apply = (u: uPlot) => {
      if (scale.current) u.setScale("x", scale.current);
    };
    if (plot.current && shape.current === key) {
      plot.current.setData(toUplotData(d), false);
      apply(plot.current);
      performance.mark("ct:chart-drawn");
      return;
    }
    plot.current?.destroy();
    shape.current = key;
    const opts = chartOptions({
      width: el.clientWidth,
      height: 360,
      data: d,
      timeZone: props.timeZone,
      limits: props.limits,
      excursions: () => excursions.peek(),
      onZoom: (from, to) => {
        if (to - from < 5 * MIN) return;
        win.value = { from, to, live: false };
      },
    });
    const u = new uPlot(opts, toUplotData(d), el);
    apply(u);
    plot.current = u;
    performance.mark("ct:chart-drawn");
  }, [data.value, language.value, props.timeZone]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      const u = plot.current;
      if (u && Math.abs(u.width - el.clientWidth) > 2) u.setSize({ width: el.clientWidth, height: 360 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
      shape.current = "";
    };
  }, []);

  // Live: a window that ends now follows new readings.
  useEffect(() => {
    let refresh: ReturnType<typeof setTimeout> | undefined;
    const off = on("readings", (payload) => {
      const rs = (payload as { readings: Reading[] }).readings.filter((r) => r.unitId === props.unitId);
      const d = data.value;
      if (rs.length === 0 || !d || !win.value.live) return;
      if (d.bucketMs) {
        refresh ??= setTimeout(() => {
          refresh = undefined;
          void load();
        }, 30_000);
        return;
      }
      const merged: ReadingsResponse = {
        readings: [
          ...d.series
            .flatMap((s) =>
              d.x.map((x, i) => ({
                probeId: s.probeId,
                observedAt: x * 1000,
                tempC: s.y[i] ?? null,
                quality: "ok",
              })),
            )
            .filter((r) => r.tempC !== null),
          ...rs.map((r) => ({
            probeId: r.probeId,
            observedAt: r.observedAt,
            tempC: r.tempC,
            quality: r.quality,
          })),
        ],
      };
      const span = win.value.to - win.value.from;
      const now = Date.now();
      scale.current = { min: (now - span) / 1000, max: now / 1000 };
      data.value = align(
        { readings: (merged.readings ?? []).filter((r) => r.observedAt >= now - span) },
        props.probeIds,
        undefined,
      );
    });
    const offExcursion = on("excursion", (payload) => {
      const e = payload as Excursion;
      if (e.unitId !== props.unitId) return;
      excursions.value = [...excursions.peek().filter((x) => x.excursionId !== e.excursionId), e];
      plot.current?.redraw(false);
    });
    return () => {
      off();
      offExcursion();
      clearTimeout(refresh);
    };
  }, [props.unitId]);

  const w = win.value;
  return (
    <div class="chart">
      <fieldset class="chart-tools">
        <legend class="sr-only">{t("chart.window")}</legend>
        {PRESETS.map((p) => (
          <button
            type="button"
            aria-pressed={w.preset === p.key}
            onClick={() => {
              const to = Date.now();
              win.value = { from: to - p.ms, to, live: true, preset: p.key };
            }}
          >
            {t(`chart.preset.${p.key}`)}
          </button>
        ))}
        {!w.live ? (
          <span class="chart-zoomed">
            {t("chart.zoomed", {
              from: dateTime(w.from, props.timeZone),
              to: dateTime(w.to, props.timeZone),
            })}
          </span>
        ) : null}
        <span class="chart-res">
          {data.value?.bucketMs
            ? t("chart.buckets", { minutes: Math.round(data.value.bucketMs / MIN) })
            : t("chart.raw")}
          {loading.value ? ` · ${t("common.loading")}` : ""}
        </span>
      </fieldset>
      {error.value ? <ErrorText message={t("errors.loadFailed", { message: error.value })} /> : null}
      <div ref={box} class="chart-box" data-testid="unit-chart" />
      <p class="chart-help">{t("chart.help")}</p>
    </div>
  );
}
