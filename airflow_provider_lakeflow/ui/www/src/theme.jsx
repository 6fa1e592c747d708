// Colours follow Airflow's own light/dark switch: its UI (next-themes) sets class="dark" or "light" on <html>.
import { useEffect, useState } from "react";

const isDark = () => document.documentElement.classList.contains("dark");

export function useColorMode() {
  const [dark, setDark] = useState(isDark);
  useEffect(() => {
    const observer = new MutationObserver(() => setDark(isDark()));
    observer.observe(document.documentElement, { attributeFilter: ["class"], attributes: true });
    return () => observer.disconnect();
  }, []);
  return dark ? "dark" : "light";
}

const PALETTES = {
  light: {
    "--lf-bg": "#ffffff", "--lf-fg": "#1a202c", "--lf-muted": "#4a5568", "--lf-border": "#e2e8f0",
    "--lf-panel": "#f7fafc", "--lf-accent": "#2b6cb0", "--lf-ok": "#2f855a", "--lf-fail": "#c53030",
    "--lf-run": "#b7791f", "--lf-idle": "#a0aec0",
  },
  dark: {
    "--lf-bg": "#1a202c", "--lf-fg": "#edf2f7", "--lf-muted": "#a0aec0", "--lf-border": "#2d3748",
    "--lf-panel": "#171923", "--lf-accent": "#63b3ed", "--lf-ok": "#68d391", "--lf-fail": "#fc8181",
    "--lf-run": "#f6e05e", "--lf-idle": "#718096",
  },
};

export const stateColor = (state) =>
  ({ COMPLETED: "var(--lf-ok)", FAILED: "var(--lf-fail)", CANCELED: "var(--lf-fail)", STOPPED: "var(--lf-fail)" })[
    state
  ] ?? (state ? "var(--lf-run)" : "var(--lf-idle)");

export function ThemeRoot({ children }) {
  const mode = useColorMode();
  return (
    <div
      data-lakeflow-theme={mode}
      style={{
        ...PALETTES[mode],
        background: "var(--lf-bg)",
        color: "var(--lf-fg)",
        font: "14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif",
        maxWidth: "100%",
        minHeight: "100%",
        padding: "12px 16px",
        boxSizing: "border-box",
      }}
    >
      {children}
    </div>
  );
}

export const styles = {
  badge: (state) => ({
    border: `1px solid ${stateColor(state)}`,
    borderRadius: 4,
    color: stateColor(state),
    display: "inline-block",
    fontSize: 12,
    fontWeight: 600,
    padding: "0 6px",
  }),
  panel: {
    background: "var(--lf-panel)",
    border: "1px solid var(--lf-border)",
    borderRadius: 6,
    marginBottom: 12,
    padding: "10px 12px",
  },
  table: { borderCollapse: "collapse", width: "100%" },
  th: {
    borderBottom: "1px solid var(--lf-border)", color: "var(--lf-muted)", fontSize: 12, fontWeight: 600,
    padding: "4px 8px", textAlign: "left", whiteSpace: "nowrap",
  },
  td: { borderBottom: "1px solid var(--lf-border)", padding: "4px 8px", verticalAlign: "top" },
  num: { borderBottom: "1px solid var(--lf-border)", padding: "4px 8px", textAlign: "right", fontVariantNumeric: "tabular-nums" },
  link: { color: "var(--lf-accent)" },
  muted: { color: "var(--lf-muted)" },
};
