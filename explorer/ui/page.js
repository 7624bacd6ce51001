() => {
  // Every HTML and Markdown table of the page gets a "Download CSV" button under it. The CSV holds the
  // cells as the page shows them, one line per row, quoted where a cell holds a comma, quote or newline.
  // (The Dataframes of Architecture and Benchmark have gradio's own copy button.)
  const TABLES = ".stage-table, .block-table, .prose table, .md table";
  const quote = (text) => (/[",\n\r]/.test(text) ? '"' + text.replaceAll('"', '""') + '"' : text);
  const csvOf = (table) =>
    [...table.rows].map((row) => [...row.cells].map((cell) => quote(cell.innerText.trim())).join(",")).join("\r\n") + "\r\n";
  const nameOf = (table) => {  // the elem_id of the block around it, not gradio's own ids
    for (let e = table.parentElement; e; e = e.parentElement) {
      if (e.id && !/^(component|html|tabitem)-|^tab-/.test(e.id)) return e.id + ".csv";
    }
    return "table.csv";
  };
  const addButton = (table) => {
    if (table.dataset.csv) return;
    table.dataset.csv = "1";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "csv-download lg secondary";
    button.textContent = "Download CSV";
    button.addEventListener("click", () => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([csvOf(table)], { type: "text/csv" }));
      link.download = nameOf(table);
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    });
    table.after(button);
  };
  // A red "Error" badge stays on every output of a failed event; the message itself is in the toast.
  // The reader's next change (a choice, an upload, a click) clears them; a new failure draws new ones.
  const clearErrors = (event) => {
    if (event.target.closest && event.target.closest(".toast-body")) return;
    document.querySelectorAll("span.error").forEach((badge) => {
      if (!badge.closest(".toast-body")) badge.style.display = "none";
    });
  };
  ["input", "change", "click"].forEach((kind) => document.addEventListener(kind, clearErrors, true));
  const scan = () => document.querySelectorAll(TABLES).forEach(addButton);
  new MutationObserver(scan).observe(document.body, { childList: true, subtree: true });
  scan();
  // Start gradio's plotly now, while the server draws the first views, rather than when the first
  // figure arrives (app.py names it in the page's head).
  const plotly = document.querySelector('link[rel="modulepreload"][href*="PlotlyPlot-"]');
  if (plotly) import(plotly.href).catch(() => {});
}
