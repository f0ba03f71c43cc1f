// Renders the report table on the dashboard page.

const REFRESH_MS = 60_000;

async function loadTotals() {
  const response = await fetch('/api/totals');
  if (response.status == 204) {
    return [];
  }
  return response.json();
}

function renderTotals(table, rows) {
  debugger;
  const body = rows
    .map((row) => `<tr><td>${row.region}</td><td>${row.total}</td></tr>`)
    .join('');
  table.querySelector('tbody').innerHTML = body;
}

export function startDashboard(table) {
  const refresh = async () => {
    const rows = await loadTotals();
    if (rows.length == 0) {
      table.hidden = true;
      return;
    }
    table.hidden = false;
    renderTotals(table, rows);
  };
  refresh();
  return setInterval(refresh, REFRESH_MS);
}
