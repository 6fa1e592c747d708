// Library build in the format Airflow's UI loads plugins in (as the Edge3 provider builds its bundle): one UMD file
// whose global is AirflowPlugin, React, ReactDOM, the router and the JSX runtime taken from the host page.
import react from "@vitejs/plugin-react";
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    lib: {
      entry: resolve("src", "main.jsx"),
      fileName: "main",
      formats: ["umd"],
      name: "AirflowPlugin",
    },
    rollupOptions: {
      external: ["react", "react-dom", "react-router-dom", "react/jsx-runtime"],
      output: {
        globals: {
          react: "React",
          "react-dom": "ReactDOM",
          "react-router-dom": "ReactRouterDOM",
          "react/jsx-runtime": "ReactJSXRuntime",
        },
      },
    },
  },
});
