// A task instance's "Lakeflow" tab: the update's state and cause, a row per table as the tables land, and for a
// failed update the category, tables and fix the task raised, with the raw messages folded below.
import { useEffect, useState } from "react";

import { formatRows, formatSeconds, formatTime, getJson } from "./api.js";
import { styles } from "./theme.jsx";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELED"]);
const TASK_ACTIVE = new Set(["running", "deferred", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "restarting"]);

function useTaskView({ dagId, runId, taskId, mapIndex }) {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let timer;
    let stopped = false;
    const load = async () => {
      let delay = 5000;
      try {
        const next = await getJson("/task-instance", { dag_id: dagId, run_id: runId, task_id: taskId, map_index: mapIndex });
        if (stopped) return;
        setView(next);
        setError(null);
        delay = Math.max(5, next.refresh_seconds ?? 5) * 1000;
        const settled = TERMINAL.has(next.update?.state) && !TASK_ACTIVE.has(next.task_state);
        if (settled) return;
      } catch (exc) {
        if (stopped) return;
        setError(String(exc.message ?? exc));
        delay = 15000;
      }
      timer = setTimeout(load, delay);
    };
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [dagId, runId, taskId, mapIndex]);
  return { view, error };
}

function TablesTable({ tables, caption }) {
  if (!tables?.length) return <p style={styles.muted}>No table has reported progress yet.</p>;
  return (
    <div style={{ overflowX: "auto" }}>
      <table style={styles.table} aria-label={caption}>
        <thead>
          <tr>
            <th style={styles.th}>Table</th>
            <th style={styles.th}>Flow status</th>
            <th style={{ ...styles.th, textAlign: "right" }}>Rows written</th>
            <th style={{ ...styles.th, textAlign: "right" }}>Upserted</th>
            <th style={{ ...styles.th, textAlign: "right" }}>Deleted</th>
            <th style={{ ...styles.th, textAlign: "right" }}>Duration</th>
          </tr>
        </thead>
        <tbody>
          {tables.map((row) => (
            <tr key={row.table} data-testid="lakeflow-table-row" data-status={row.status ?? ""}>
              <td style={{ ...styles.td, wordBreak: "break-all" }}>{row.table}</td>
              <td style={styles.td}>
                <span style={styles.badge(row.status)}>{row.status ?? "–"}</span>
              </td>
              <td style={styles.num}>{formatRows(row.num_output_rows)}</td>
              <td style={styles.num}>{formatRows(row.num_upserted_rows)}</td>
              <td style={styles.num}>{formatRows(row.num_deleted_rows)}</td>
              <td style={styles.num}>{formatSeconds(row.duration_seconds)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function UpdateHeader({ title, updateId, update, url }) {
  return (
    <div style={{ alignItems: "baseline", display: "flex", flexWrap: "wrap", gap: 12, marginBottom: 8 }}>
      <strong>{title}</strong>
      <code>{updateId}</code>
      <span style={styles.badge(update?.state)} data-testid="lakeflow-update-state">
        {update?.state ?? "unknown"}
      </span>
      {update?.cause ? <span style={styles.muted}>cause: {update.cause}</span> : null}
      {update?.creation_time ? <span style={styles.muted}>created {formatTime(Number(update.creation_time))}</span> : null}
      {update?.full_refresh_selection?.length ? (
        <span style={styles.muted}>full refresh of {update.full_refresh_selection.join(", ")}</span>
      ) : null}
      {url ? (
        <a href={url} target="_blank" rel="noreferrer" style={styles.link}>
          Open in Databricks ↗
        </a>
      ) : null}
    </div>
  );
}

function Failure({ failure, messages }) {
  const raw = messages?.length ? messages : failure?.messages ?? [];
  if (!failure && !raw.length) return null;
  return (
    <section style={{ ...styles.panel, borderColor: "var(--lf-fail)" }} data-testid="lakeflow-failure">
      {failure ? (
        <dl style={{ display: "grid", gap: "4px 12px", gridTemplateColumns: "max-content 1fr", margin: 0 }}>
          <dt style={styles.muted}>Failure category</dt>
          <dd style={{ margin: 0, fontWeight: 600 }} data-testid="lakeflow-failure-category">{failure.category}</dd>
          {failure.error_classes?.length ? (
            <>
              <dt style={styles.muted}>Error conditions</dt>
              <dd style={{ margin: 0 }}><code>{failure.error_classes.join(", ")}</code></dd>
            </>
          ) : null}
          <dt style={styles.muted}>Tables</dt>
          <dd style={{ margin: 0 }}>{failure.tables?.length ? failure.tables.join(", ") : "–"}</dd>
          <dt style={styles.muted}>Fix</dt>
          <dd style={{ margin: 0 }} data-testid="lakeflow-failure-fix">{failure.fix}</dd>
        </dl>
      ) : null}
      {raw.length ? (
        <details style={{ marginTop: 8 }}>
          <summary style={{ cursor: "pointer" }}>Raw messages from the event log ({raw.length})</summary>
          <pre style={{ fontSize: 12, margin: "6px 0 0", whiteSpace: "pre-wrap", wordBreak: "break-word" }}>{raw.join("\n\n")}</pre>
        </details>
      ) : null}
    </section>
  );
}

export function TaskInstanceView(props) {
  const { view, error } = useTaskView(props);
  if (error && !view) return <p role="alert">Could not load the Lakeflow view: {error}</p>;
  if (!view) return <p style={styles.muted}>Loading…</p>;
  if (!view.is_lakeflow) return <p style={styles.muted}>This task does not run or watch a Lakeflow Connect pipeline.</p>;
  return (
    <div data-testid="lakeflow-task-view">
      {error ? <p role="alert">Refresh failed: {error}</p> : null}
      <p style={{ ...styles.muted, margin: "0 0 8px" }}>
        Task {view.task_state ?? "–"} · pipeline <code>{view.pipeline_id ?? "–"}</code>
        {view.update && !TERMINAL.has(view.update.state) ? ` · refreshes every ${view.refresh_seconds} s` : ""}
      </p>
      {!view.update_id ? <p>No update has been started yet.</p> : null}
      {view.workspace_error ? (
        <p role="alert" style={{ ...styles.panel, borderColor: "var(--lf-run)" }} data-testid="lakeflow-workspace-error">
          {view.workspace_error}
        </p>
      ) : null}
      {view.update_id ? (
        <section style={styles.panel}>
          <UpdateHeader
            title={view.follow_up ? "Follow-up update" : "Update"}
            updateId={view.update_id}
            update={view.update ?? { state: view.xcom_state }}
            url={view.update_url}
          />
          {view.follow_up ? <p style={styles.muted}>{view.follow_up.reason}</p> : null}
          <TablesTable tables={view.tables} caption="Tables of the update" />
        </section>
      ) : null}
      <Failure failure={view.failure} messages={view.failure ? view.messages : []} />
      {view.original ? (
        <section style={styles.panel}>
          <UpdateHeader title="Original update (schema change)" updateId={view.original.update_id} update={view.original.update} url={view.follow_up?.update_url?.replace(view.update_id, view.original.update_id)} />
          <TablesTable tables={view.original.tables} caption="Tables of the original update" />
          {view.original.messages?.length ? (
            <details>
              <summary style={{ cursor: "pointer" }}>Raw messages ({view.original.messages.length})</summary>
              <pre style={{ fontSize: 12, whiteSpace: "pre-wrap" }}>{view.original.messages.join("\n\n")}</pre>
            </details>
          ) : null}
        </section>
      ) : null}
    </div>
  );
}
