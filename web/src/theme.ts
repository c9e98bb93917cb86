import { Modal, Notification, createTheme, type CSSVariablesResolver } from '@mantine/core';

// System fonts only: nothing is fetched from a CDN.
export const theme = createTheme({
  primaryColor: 'blue',
  // Shade 6 (the default) gives white button text and links under 4.5:1 contrast.
  primaryShade: { light: 8, dark: 8 },
  defaultRadius: 'sm',
  // Modals, menus and other transitions are instant for who asked for reduced motion.
  respectReducedMotion: true,
  components: {
    // Icon-only close buttons get a name (axe: button-name), modals.openConfirmModal too.
    Modal: Modal.extend({ defaultProps: { closeButtonProps: { 'aria-label': 'Close' } } }),
    Notification: Notification.extend({
      defaultProps: { closeButtonProps: { 'aria-label': 'Dismiss' } },
      // The description's default grey is 3.3:1 on white.
      styles: { description: { color: 'var(--mantine-color-text)' } },
    }),
  },
});

// WCAG AA contrast (the browser tests run axe-core): Mantine's default "dimmed" grey and
// the text of "light" and "outline" variants (shade 6 on white) are below 4.5:1 in the
// light scheme; shade 9 text is above it except for yellow and orange (not for text).
export const cssVariablesResolver: CSSVariablesResolver = (resolved) => {
  const light: Record<string, string> = {
    '--mantine-color-dimmed': '#495057',
    // Field errors (text and the invalid input's text): red 6 is 3.3:1 on white.
    '--mantine-color-error': 'var(--mantine-color-red-9)',
  };
  for (const color of Object.keys(resolved.colors)) {
    if (color === 'dark') continue;
    light[`--mantine-color-${color}-light-color`] = `var(--mantine-color-${color}-9)`;
    light[`--mantine-color-${color}-outline`] = `var(--mantine-color-${color}-9)`;
  }
  return { variables: {}, light, dark: { '--mantine-color-dimmed': '#adb5bd' } };
};
