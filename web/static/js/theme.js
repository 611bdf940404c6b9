// The colour theme: dark by default, light on request, remembered in localStorage.

const KEY = "guilds.theme";

export function currentTheme() {
  return document.documentElement.dataset.theme === "light" ? "light" : "dark";
}

export function applyStoredTheme() {
  let stored;
  try {
    stored = localStorage.getItem(KEY);
  } catch {
    stored = null;
  }
  // Without a choice of the person's own, the theme the admin set in guilds.yaml (web.theme).
  const fallback = document.querySelector('meta[name="guilds-default-theme"]')?.getAttribute("content");
  const theme = stored === "light" || stored === "dark" ? stored : fallback === "light" ? "light" : "dark";
  setTheme(theme, { persist: false });
}

export function setTheme(theme, { persist = true } = {}) {
  document.documentElement.dataset.theme = theme;
  const meta = document.querySelector('meta[name="color-scheme"]');
  if (meta) meta.setAttribute("content", theme);
  if (!persist) return;
  try {
    localStorage.setItem(KEY, theme);
  } catch {
    // private mode: the choice lasts for this page only
  }
}

export function toggleTheme() {
  setTheme(currentTheme() === "dark" ? "light" : "dark");
}
