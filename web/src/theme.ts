import { createTheme, type CSSVariablesResolver } from '@mantine/core';

// System fonts only: nothing is fetched from a CDN.
export const theme = createTheme({
  primaryColor: 'blue',
  defaultRadius: 'sm',
});

// Mantine's default "dimmed" grey is below WCAG AA contrast on white (axe flags it);
// a darker grey in light, a lighter one in dark.
export const cssVariablesResolver: CSSVariablesResolver = () => ({
  variables: {},
  light: { '--mantine-color-dimmed': '#495057' },
  dark: { '--mantine-color-dimmed': '#adb5bd' },
});
