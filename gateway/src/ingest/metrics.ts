/**
 * Ingest counters, rendered in the Prometheus text exposition format (version 0.0.4) for
 * GET /metrics. Hand-written: a few counters and gauges do not need a client library.
 */

export class IngestMetrics {
  messagesReceived = 0;
  readingsReceived = 0;
  readingsStored = 0;
  readingsDuplicate = 0;
  /** Stored readings of units no birth has announced: not evaluated by the engine. */
  readingsUnknownUnit = 0;
  /** Agent gap records whose every evicted reading had been stored already (not a gap). */
  gapsFullyReceived = 0;
  eventsPublished = 0;
  eventPublishFailures = 0;
  storeFailures = 0;
  /** Readings waiting for the store (gauge). */
  pendingReadings = 0;
  readonly rejected = new Map<string, number>();
  readonly messagesByKind = new Map<string, number>();

  reject(reason: string): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  message(kind: string): void {
    this.messagesReceived++;
    this.messagesByKind.set(kind, (this.messagesByKind.get(kind) ?? 0) + 1);
  }

  /** The counters and the pending gauge by name, for the Grafana status series. */
  counters(): Record<string, number> {
    return {
      messagesReceived: this.messagesReceived,
      readingsReceived: this.readingsReceived,
      readingsStored: this.readingsStored,
      readingsDuplicate: this.readingsDuplicate,
      readingsUnknownUnit: this.readingsUnknownUnit,
      rejected: this.rejectedTotal(),
      storeFailures: this.storeFailures,
      eventsPublished: this.eventsPublished,
      eventPublishFailures: this.eventPublishFailures,
      pendingReadings: this.pendingReadings,
    };
  }

  rejectedTotal(): number {
    let n = 0;
    for (const v of this.rejected.values()) n += v;
    return n;
  }

  /**
   * Prometheus text format; label values are our own constants, never client input. `gauges`
   * and `counters` from elsewhere (broker, engine): name (with labels, if any) → value, one TYPE
   * line per metric name, as the exposition format wants.
   */
  render(gauges: Record<string, number> = {}, counters: Record<string, number> = {}): string {
    const lines: string[] = [];
    const counter = (name: string, help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    };
    const labelled = (name: string, help: string, label: string, values: Map<string, number>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [k, v] of [...values].sort()) lines.push(`${name}{${label}="${k}"} ${v}`);
    };
    labelled(
      "coldtrace_ingest_messages_total",
      "MQTT messages received, by topic kind.",
      "kind",
      this.messagesByKind,
    );
    labelled(
      "coldtrace_ingest_rejected_total",
      "Messages rejected by ingest, by reason (CT_WIRE_INVALID, CT_TOPIC_INVALID, …).",
      "reason",
      this.rejected,
    );
    counter(
      "coldtrace_ingest_readings_received_total",
      "Readings in valid telemetry messages.",
      this.readingsReceived,
    );
    counter("coldtrace_ingest_readings_stored_total", "New readings stored.", this.readingsStored);
    counter(
      "coldtrace_ingest_readings_duplicate_total",
      "Readings already stored (replays, QoS 1 resends).",
      this.readingsDuplicate,
    );
    counter(
      "coldtrace_ingest_gaps_fully_received_total",
      "Agent outbox evictions whose every reading had reached the gateway (no recording gap).",
      this.gapsFullyReceived,
    );
    counter(
      "coldtrace_ingest_readings_unknown_unit_total",
      "Readings stored for a unit no agent birth has announced: not evaluated for excursions.",
      this.readingsUnknownUnit,
    );
    counter("coldtrace_ingest_store_failures_total", "Failed store appends (retried).", this.storeFailures);
    counter(
      "coldtrace_events_published_total",
      "Alarm and excursion events published.",
      this.eventsPublished,
    );
    counter(
      "coldtrace_events_publish_failures_total",
      "Event publishes that failed.",
      this.eventPublishFailures,
    );
    lines.push(
      "# HELP coldtrace_ingest_pending_readings Readings waiting for the store.",
      "# TYPE coldtrace_ingest_pending_readings gauge",
      `coldtrace_ingest_pending_readings ${this.pendingReadings}`,
    );
    for (const [type, values] of [
      ["gauge", gauges],
      ["counter", counters],
    ] as const) {
      let typed = "";
      for (const [series, value] of Object.entries(values)) {
        const name = series.split("{")[0] as string;
        if (name !== typed) lines.push(`# TYPE ${name} ${type}`);
        typed = name;
        lines.push(`${series} ${value}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
}
