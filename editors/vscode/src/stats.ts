// Renders the answer of `review-lsp.showStats` as a readable page: queues and latency per
// lane, cache hit rate, tokens, budget, limiter and breaker state. The raw JSON stays at the
// bottom for anything the tables leave out.

type Json = unknown;

function obj(v: Json): Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, Json>) : {};
}

function arr(v: Json): Json[] {
  return Array.isArray(v) ? v : [];
}

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

function text(v: Json, none = "–"): string {
  if (v === null || v === undefined) {
    return none;
  }
  if (typeof v === "number") {
    return Number.isInteger(v) ? v.toLocaleString("en-US") : v.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }
  if (typeof v === "string") {
    return v;
  }
  if (typeof v === "boolean") {
    return v ? "yes" : "no";
  }
  return JSON.stringify(v);
}

function ms(v: Json): string {
  return typeof v === "number" ? `${v.toLocaleString("en-US", { maximumFractionDigits: 1 })} ms` : "–";
}

function percent(v: Json): string {
  return typeof v === "number" ? `${(v * 100).toFixed(1)} %` : "–";
}

function usd(v: Json, none = "–"): string {
  return typeof v === "number" ? `$${v.toFixed(4)}` : none;
}

function bytes(v: Json): string {
  if (typeof v !== "number") {
    return "–";
  }
  const units = ["B", "KiB", "MiB", "GiB"];
  let n = v;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u += 1;
  }
  return `${n.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

function table(head: string[], rows: string[][]): string {
  if (rows.length === 0) {
    return `<p class="muted">none</p>`;
  }
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`;
}

function pairs(rows: [string, string][]): string {
  const tr = rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("");
  return `<table class="pairs"><tbody>${tr}</tbody></table>`;
}

function breakerClass(state: string): string {
  return state === "open" ? "bad" : state === "half_open" ? "warn" : "ok";
}

/** The stats as a full HTML page for a webview (no scripts; inline styles only). */
export function renderStats(stats: Json, updated: Date): string {
  const s = obj(stats);
  const status = obj(s.status);
  const lanes = obj(s.lanes);
  const cache = obj(s.cache);
  const store = obj(cache.store);
  const llm = obj(s.llm);
  const limits = obj(llm.limits);
  const budget = limits.budget === null || limits.budget === undefined ? undefined : obj(limits.budget);

  const laneRows = ["active", "open", "workspace"]
    .filter((name) => name in lanes)
    .concat(Object.keys(lanes).filter((n) => !["active", "open", "workspace"].includes(n)))
    .map((name) => {
      const l = obj(lanes[name]);
      return [
        name,
        text(l.depth),
        text(l.started),
        text(l.finished),
        ms(l.p50_ms),
        ms(l.p95_ms),
        ms(l.p99_ms),
      ];
    });

  const cacheRows: [string, string][] = [
    ["enabled", text(cache.enabled)],
    ["hit rate", percent(cache.hit_rate)],
    ["hits / misses", `${text(cache.hits)} / ${text(cache.misses)}`],
  ];
  if (Object.keys(store).length > 0) {
    cacheRows.push(
      ["hits by tier (memory / disk / team)", `${text(store.memory_hits)} / ${text(store.disk_hits)} / ${text(store.team_hits)}`],
      ["entries", text(store.entries)],
      ["size", `${bytes(store.bytes)} of ${bytes(store.max_bytes)}`],
      ["file", text(store.path, "in memory only")],
    );
    if (store.team !== null && store.team !== undefined) {
      const team = obj(store.team);
      cacheRows.push(["team Redis", Object.entries(team).map(([k, v]) => `${k}: ${text(v)}`).join(", ")]);
    }
  }

  const agentRows = Object.entries(obj(llm.agents)).map(([agent, engine]) => [agent, text(engine)]);
  const selections = obj(s.agent_selections);

  const llmRows: [string, string][] = [
    ["status", text(llm.status)],
    ["calls", text(llm.calls)],
    ["prompt tokens", text(llm.prompt_tokens)],
    ["completion tokens", text(llm.completion_tokens)],
  ];
  if (arr(limits.quota_stopped).length > 0) {
    llmRows.push(["stopped on quota", arr(limits.quota_stopped).map((q) => text(q)).join(", ")]);
  }

  let budgetHtml = `<p class="muted">No daily budget set (<code>budget.daily_token_budget</code>, <code>budget.daily_cost_budget_usd</code>).</p>`;
  if (budget !== undefined) {
    const spent = obj(budget.spent);
    const remaining = obj(budget.remaining);
    const tokens = (typeof spent.input_tokens === "number" ? spent.input_tokens : 0) +
      (typeof spent.output_tokens === "number" ? spent.output_tokens : 0);
    budgetHtml = pairs([
      ["day (UTC)", text(budget.day)],
      ["spent tokens", `${text(tokens)} (${text(spent.input_tokens)} in, ${text(spent.output_tokens)} out)`],
      ["spent cost", usd(spent.cost_usd)],
      ["calls", text(spent.calls)],
      ["remaining tokens", text(remaining.tokens, "no cap")],
      ["remaining cost", usd(remaining.cost_usd, "no cap")],
      ["exceeded", text(budget.exceeded)],
    ]);
  }

  const endpointRows = arr(limits.endpoints).map((e) => {
    const ep = obj(e);
    const br = obj(ep.breaker);
    const lim = obj(ep.limiter);
    const waiting =
      (typeof lim.waiting_active === "number" ? lim.waiting_active : 0) +
      (typeof lim.waiting_open === "number" ? lim.waiting_open : 0) +
      (typeof lim.waiting_workspace === "number" ? lim.waiting_workspace : 0);
    const openFor = typeof br.open_for_ms === "number" ? ` (${Math.ceil(br.open_for_ms / 1000)} s)` : "";
    return [
      text(ep.endpoint),
      `${text(br.state)}${openFor}`,
      text(br.consecutive_failures),
      `${text(lim.requests_per_minute)} rpm, ${text(lim.tokens_per_minute)} tpm`,
      `${text(lim.rate_percent)} %`,
      text(lim.in_flight),
      text(waiting),
    ];
  });

  const state = text(status.state);
  const stateClass = state === "idle" ? "ok" : state === "reviewing" ? "" : "bad";
  const breakerStates = arr(limits.endpoints).map((e) => text(obj(obj(e).breaker).state));
  const worstBreaker = breakerStates.includes("open") ? "open" : breakerStates.includes("half_open") ? "half_open" : "closed";

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>review-lsp stats</title>
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 1.5em 2em; }
  h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid var(--vscode-panel-border); padding-bottom: .2em; }
  table { border-collapse: collapse; margin: .4em 0; }
  th, td { text-align: left; padding: .25em .9em .25em 0; vertical-align: top; }
  thead th { border-bottom: 1px solid var(--vscode-panel-border); }
  table.pairs th { font-weight: normal; color: var(--vscode-descriptionForeground); }
  td { font-variant-numeric: tabular-nums; }
  .muted { color: var(--vscode-descriptionForeground); }
  .ok { color: var(--vscode-testing-iconPassed, green); }
  .warn { color: var(--vscode-editorWarning-foreground, orange); }
  .bad { color: var(--vscode-errorForeground, red); }
  .summary span { margin-right: 2em; }
  pre { white-space: pre-wrap; font-family: var(--vscode-editor-font-family); font-size: .9em; }
</style>
</head>
<body>
<h1>review-lsp</h1>
<p class="summary">
  <span>state: <b class="${stateClass}">${escapeHtml(state)}</b></span>
  <span>reviewing: <b>${escapeHtml(text(status.reviewing))}</b></span>
  <span>cache hit rate: <b>${escapeHtml(percent(cache.hit_rate))}</b></span>
  <span>breaker: <b class="${breakerClass(worstBreaker)}">${escapeHtml(breakerStates.length === 0 ? "no LLM endpoint" : worstBreaker)}</b></span>
</p>
<p class="muted">${escapeHtml(text(status.message, ""))} · updated ${escapeHtml(updated.toLocaleTimeString())} (refreshes every few seconds while visible)</p>

<h2>Queues and latency (wait before a review starts)</h2>
${table(["lane", "queue depth", "started", "finished", "p50", "p95", "p99"], laneRows)}
${pairs([
  ["reviews", text(s.reviews)],
  ["findings published", text(s.findings)],
  ["superseded by a newer edit", text(s.superseded)],
  ["stale results dropped", text(s.stale_results_dropped)],
  ["open documents", text(s.open_documents)],
])}

<h2>Cache</h2>
${pairs(cacheRows)}

<h2>LLM</h2>
${pairs(llmRows)}
${agentRows.length > 0 ? table(["agent", "engine"], agentRows) : `<p class="muted">No LLM agents: offline rules only (<code>llm.provider</code> = offline).</p>`}
${Object.keys(selections).length > 0 ? `<p class="muted">Classifier picks per agent: ${escapeHtml(Object.entries(selections).map(([k, v]) => `${k} ${text(v)}`).join(", "))}</p>` : ""}

<h2>Budget (today)</h2>
${budgetHtml}

<h2>Rate limits and breakers</h2>
${table(["endpoint", "breaker", "failures in a row", "limit", "rate now", "in flight", "waiting"], endpointRows)}

<details>
<summary>Raw JSON</summary>
<pre>${escapeHtml(JSON.stringify(stats, null, 2))}</pre>
</details>
</body>
</html>`;
}
