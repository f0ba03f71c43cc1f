// Renders the search results panel. Text goes through textContent; the only markup is
// built with DOM APIs, so user data never reaches the HTML parser.

const RESULTS_ID = 'results';
const MAX_RESULTS = 25;

function clear(node) {
  node.innerHTML = '';
}

function renderResult(result) {
  const li = document.createElement('li');
  const link = document.createElement('a');
  link.href = result.url;
  link.textContent = result.title;
  li.append(link);
  if (result.snippet != null) {
    const p = document.createElement('p');
    p.textContent = result.snippet;
    li.append(p);
  }
  return li;
}

export function renderResults(results) {
  const list = document.getElementById(RESULTS_ID);
  if (list === null) {
    return;
  }
  clear(list);
  const fragment = document.createDocumentFragment();
  for (const result of results.slice(0, MAX_RESULTS)) {
    fragment.append(renderResult(result));
  }
  list.append(fragment);
  list.dataset.count = String(results.length);
}

export function debounce(fn, wait = 200) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}

export async function search(query, { signal } = {}) {
  const url = new URL('/api/search', window.location.origin);
  url.searchParams.set('q', query);
  const response = await fetch(url, { signal });
  if (!response.ok) {
    throw new Error(`search failed: ${response.status}`);
  }
  return response.json();
}

export function wireSearch(input) {
  let controller = null;
  input.addEventListener(
    'input',
    debounce(async () => {
      controller?.abort();
      controller = new AbortController();
      try {
        renderResults(await search(input.value, { signal: controller.signal }));
      } catch (err) {
        if (err.name !== 'AbortError') {
          console.warn(err);
        }
      }
    }),
  );
}
