// The "Lakeflow pipelines" page: every pipeline this deployment ran (our operators' XCom) or watches (our watchers'
// asset events), each with its recent updates as a timeline and rows per table over time; a filter for failures.
import { useEffect, useState } from "react";

import { formatRows, formatSeconds, formatTime, getJson } from "./api.js";
import { stateColor, styles } from "./theme.jsx";

const SERIES = ["#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#b7791f", "#718096"];
const REFRESH_MS = 30000;

const epoch = (iso) => (iso ? new Date(iso).getTime() : null);

function Timeline({ updates }) {
  const points = updates.filter((u) => u.time);
  if (!points.length) return null;
  const starts = points.map((u) => epoch(u.time));
  const ends = points.map((u) => epoch(u.end_time) ?? Date.now());
  const min = Math.min(...starts);
  const max = Math.max(...ends, min + 1000);
  const width = 600;
  const x = (t) => 8 + ((t - min) / (max - min)) * (width - 16);
  return (
    <svg viewBox={`0 0 ${width} 46`} style={{ display: "block", maxWidth: width, width: "100%" }} role="img" aria-label="Timeline of recent updates" data-testid="lakeflow-timeline">
      <line x1="8" x2={width - 8} y1="30" y2="30" stroke="var(--lf-border)" />
      {points.map((u, i) => {
        const left = x(starts[i]);
        const right = Math.max(left + 6, x(ends[i]));
        return (
          <rect key={u.update_id} x={left} y="18" width={right - left} height="24" rx="3" fill={stateColor(u.state)} opacity="0.85">
            <title>{`${u.update_id} ${u.state ?? ""} · ${formatTime(u.time)} · ${formatSeconds(u.duration_seconds)} · ${u.started_by}`}</title>
          </rect>
        );
      })}
      <text x="8" y="12" fontSize="10" fill="var(--lf-muted)">{formatTime(new Date(min).toISOString())}</text>
      <text x={width - 8} y="12" fontSize="10" fill="var(--lf-muted)" textAnchor="end">{formatTime(new Date(max).toISOString())}</text>
    </svg>
  );
}

function RowsChart({ updates }) {
  const ordered = [...updates].filter((u) => u.time).reverse();
  const tables = [...new Set(ordered.flatMap((u) => Object.keys(u.rows ?? {})))].slice(0, SERIES.length);
  const values = ordered.flatMap((u) => tables.map((t) => u.rows?.[t]).filter((v) => typeof v === "number"));
  if (!tables.length || !values.length) return <p style={styles.muted}>No rows reported yet.</p>;
  const width = 600;
  const height = 120;
  const max = Math.max(...values, 1);
  // One update: its points on the left, where the next updates will follow.
  const x = (i) => (ordered.length === 1 ? 60 : 60 + (i / (ordered.length - 1)) * (width - 80));
  const y = (v) => height - 16 - (v / max) * (height - 28);
  return (
    <div>
      <svg viewBox={`0 0 ${width} ${height}`} style={{ display: "block", maxWidth: width, width: "100%" }} role="img" aria-label="Rows per table over time" data-testid="lakeflow-rows-chart">
        <text x="2" y="16" fontSize="10" fill="var(--lf-muted)">{formatRows(max)} rows</text>
        <text x="2" y={height - 18} fontSize="10" fill="var(--lf-muted)">0</text>
        <line x1="40" x2={width - 8} y1={height - 16} y2={height - 16} stroke="var(--lf-border)" />
        {tables.map((table, s) => {
          const pts = ordered
            .map((u, i) => (typeof u.rows?.[table] === "number" ? [x(i), y(u.rows[table])] : null))
            .filter(Boolean);
          return (
            <g key={table} stroke={SERIES[s]} fill={SERIES[s]}>
              <polyline points={pts.map((p) => p.join(",")).join(" ")} fill="none" strokeWidth="2" />
              {pts.map(([px, py], i) => (
                <circle key={i} cx={px} cy={py} r="3" />
              ))}
            </g>
          );
        })}
      </svg>
      <div style={{ display: "flex", flexWrap: "wrap", fontSize: 12, gap: 12 }}>
        {tables.map((table, s) => (
          <span key={table}>
            <span style={{ background: SERIES[s], display: "inline-block", height: 8, marginRight: 4, width: 8 }} />
            {table}
          </span>
        ))}
      </div>
    </div>
  );
}

function UpdatesTable({ updates }) {
  return (
    <div style={{ overflowX: "auto" }}>
      <table style={styles.table}>
        <thead>
          <tr>
            <th style={styles.th}>Update</th>
            <th style={styles.th}>State</th>
            <th style={styles.th}>When</th>
            <th style={{ ...styles.th, textAlign: "right" }}>Duration</th>
            <th style={styles.th}>Started by</th>
          </tr>
        </thead>
        <tbody>
          {updates.map((u) => (
            <tr key={u.update_id} data-testid="lakeflow-update-row">
              <td style={styles.td}>
                {u.update_url ? (
                  <a href={u.update_url} target="_blank" rel="noreferrer" style={styles.link}>
                    <code>{u.update_id.slice(0, 8)}</code>
                  </a>
                ) : (
                  <code>{u.update_id.slice(0, 8)}</code>
                )}
              </td>
              <td style={styles.td}>
                <span style={styles.badge(u.state)}>{u.state ?? "–"}</span>
                {u.failure_category ? <span style={{ ...styles.muted, marginLeft: 6 }}>{u.failure_category}</span> : null}
              </td>
              <td style={{ ...styles.td, whiteSpace: "nowrap" }}>{formatTime(u.time)}</td>
              <td style={styles.num}>{formatSeconds(u.duration_seconds)}</td>
              <td style={styles.td}>{u.started_by}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function PipelinesPage() {
  const [failedOnly, setFailedOnly] = useState(false);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let stopped = false;
    let timer;
    const load = async () => {
      try {
        const next = await getJson("/pipelines", { failed_only: failedOnly });
        if (!stopped) {
          setData(next);
          setError(null);
        }
      } catch (exc) {
        if (!stopped) setError(String(exc.message ?? exc));
      }
      if (!stopped) timer = setTimeout(load, REFRESH_MS);
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [failedOnly]);
  return (
    <div data-testid="lakeflow-pipelines-page">
      <div style={{ alignItems: "center", display: "flex", flexWrap: "wrap", gap: 16, marginBottom: 12 }}>
        <h2 style={{ fontSize: 20, margin: 0 }}>Lakeflow Connect pipelines</h2>
        <label style={{ alignItems: "center", display: "flex", gap: 6 }}>
          <input type="checkbox" checked={failedOnly} onChange={(e) => setFailedOnly(e.target.checked)} data-testid="lakeflow-failed-filter" />
          Failed updates only
        </label>
      </div>
      <p style={{ ...styles.muted, marginTop: 0 }}>
        Pipelines that this Airflow ran (the run operator's XCom) or watches (asset events of Lakeflow watchers), in the DAGs
        and assets you may read.
      </p>
      {error ? <p role="alert">Could not load the pipelines: {error}</p> : null}
      {data && !data.pipelines.length ? <p>{failedOnly ? "No failed update." : "No Lakeflow update yet."}</p> : null}
      {data?.pipelines.map((p) => (
        <section key={p.pipeline_id} style={styles.panel} data-testid="lakeflow-pipeline">
          <div style={{ alignItems: "baseline", display: "flex", flexWrap: "wrap", gap: 12 }}>
            <strong>Pipeline</strong>
            <code>{p.pipeline_id}</code>
            {p.dags.length ? <span style={styles.muted}>DAGs: {p.dags.join(", ")}</span> : null}
            {p.assets.length ? <span style={styles.muted}>assets: {p.assets.join(", ")}</span> : null}
          </div>
          <Timeline updates={p.updates} />
          <RowsChart updates={p.updates} />
          <UpdatesTable updates={p.updates} />
        </section>
      ))}
    </div>
  );
}
