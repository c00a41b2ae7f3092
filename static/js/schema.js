// The server's schema (app/schema.py): ranges, choices, defaults, limits, grid, presets.
// Inline in every page (no request before the first picture); fetched where it is not.
const tag = typeof document !== 'undefined' ? document.getElementById('dp-schema') : null;
export const SCHEMA = tag ? JSON.parse(tag.textContent) : await (await fetch('/schema.json')).json();
