/** Lists longer than one page (the API answers at most 1,000 items a request). */

export const PAGE_SIZE = 1000;

export interface Page<T> {
  data: T[];
  count: number;
}

/**
 * Every item of a paged list: the first page says how many there are, the rest are
 * asked for together. Enough for the fleet's sizes (1,000 servers, 10,000 workloads).
 */
export async function fetchAllPages<T>(fetchPage: (offset: number, limit: number) => Promise<Page<T>>): Promise<Page<T>> {
  const first = await fetchPage(0, PAGE_SIZE);
  if (first.count <= first.data.length) return first;
  const offsets: number[] = [];
  for (let offset = PAGE_SIZE; offset < first.count; offset += PAGE_SIZE) offsets.push(offset);
  const rest = await Promise.all(offsets.map((offset) => fetchPage(offset, PAGE_SIZE)));
  return { data: first.data.concat(...rest.map((page) => page.data)), count: first.count };
}
