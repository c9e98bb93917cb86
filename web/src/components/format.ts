/** Small formatting helpers shared by the pages. */

/** "42 s", "5 min", "3 h", "2 d" since `iso` (at `now`). */
export function age(iso: string, now: number = Date.now()): string {
  return span(Math.round((now - new Date(iso).getTime()) / 1000));
}

/** "in 5 min" until `iso` (at `now`); "now" when it is due. */
export function until(iso: string, now: number = Date.now()): string {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  return seconds < 1 ? 'now' : `in ${span(seconds)}`;
}

function span(total: number): string {
  const seconds = Math.max(0, total);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}
