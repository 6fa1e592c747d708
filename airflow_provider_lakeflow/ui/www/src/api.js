// The plugin's JSON reads, under the api-server's base path (Airflow's UI puts it in <base href>).
export function apiBase() {
  const baseHref = document.querySelector("head > base")?.getAttribute("href") ?? "/";
  return new URL(baseHref, globalThis.location.origin).pathname.replace(/\/$/, "") + "/lakeflow/api";
}

export async function getJson(path, params) {
  const query = new URLSearchParams(params ?? {}).toString();
  const response = await fetch(`${apiBase()}${path}${query ? `?${query}` : ""}`, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response.json();
}

export const formatRows = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export const formatTime = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
