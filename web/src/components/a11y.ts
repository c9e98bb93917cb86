/** Props that keep Mantine pieces accessible (the browser tests run axe-core). */

/** A Modal's close button has no accessible name of its own. */
export const MODAL_CLOSE = { 'aria-label': 'Close' } as const;

/** An Alert's title in the text colour: the green/red title on the light background is under 4.5:1. */
export const READABLE_ALERT = { title: { color: 'var(--mantine-color-text)' } } as const;
