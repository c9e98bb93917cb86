/** Lists longer than one page (the API answers at most 1,000 items a request). */

export const PAGE_SIZE = 1000;
/** The first request of a progressive load: small, so the page has rows at once. */
export const FIRST_PAGE_SIZE = 200;

export interface Page<T> {
  data: T[];
  count: number;
}

/**
 * Every item of a paged list: the first page says how many there are, the rest are
 * asked for together. Enough for the fleet's sizes (1,000 servers, 10,000 workloads).
 * With `onFirstPage`, the first request is small and its rows are handed over at once
 * (a table shows them while the rest load).
 */
export async function fetchAllPages<T>(
  fetchPage: (offset: number, limit: number) => Promise<Page<T>>,
  onFirstPage?: (first: Page<T>) => void,
): Promise<Page<T>> {
  const firstSize = onFirstPage ? FIRST_PAGE_SIZE : PAGE_SIZE;
  const first = await fetchPage(0, firstSize);
  if (first.count <= first.data.length) return first;
  onFirstPage?.(first);
  const offsets: number[] = [];
  for (let offset = first.data.length; offset < first.count; offset += PAGE_SIZE) offsets.push(offset);
  const rest = await Promise.all(offsets.map((offset) => fetchPage(offset, PAGE_SIZE)));
  return { data: first.data.concat(...rest.map((page) => page.data)), count: first.count };
}
