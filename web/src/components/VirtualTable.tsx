/**
 * A table whose rows are virtualised (TanStack Virtual): only the rows in view are in
 * the DOM, so 10,000 workloads cost what 30 do. Columns are declared once; the scroll
 * region is focusable and labelled so keyboard users can scroll it.
 */
import { Table, Text } from '@mantine/core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useRef, type ReactNode } from 'react';

export interface Column<T> {
  key: string;
  header: string;
  cell: (row: T) => ReactNode;
  width?: number | string;
}

interface VirtualTableProps<T> {
  label: string;
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey: (row: T) => string;
  empty?: ReactNode;
  /** Height of the scroll region (CSS). */
  height?: string;
  rowHeight?: number;
  testId?: string;
  /** A click on a row (outside its links and buttons), e.g. to open it. */
  onRowClick?: (row: T) => void;
}

export function VirtualTable<T>({
  label,
  rows,
  columns,
  rowKey,
  empty = 'Nothing to show.',
  height = 'calc(100vh - 180px)',
  rowHeight = 44,
  testId,
  onRowClick,
}: VirtualTableProps<T>) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => rowHeight,
    overscan: 10,
  });
  const items = virtualizer.getVirtualItems();
  const before = items.length ? items[0].start : 0;
  const after = items.length ? virtualizer.getTotalSize() - items[items.length - 1].end : 0;

  return (
    <div
      ref={scrollRef}
      role="region"
      aria-label={label}
      tabIndex={0}
      style={{ maxHeight: height, overflow: 'auto' }}
      data-testid={testId}
    >
      <Table striped highlightOnHover stickyHeader aria-rowcount={rows.length + 1}>
        <Table.Thead>
          <Table.Tr>
            {columns.map((column) => (
              <Table.Th key={column.key} style={{ width: column.width }} scope="col">
                {column.header}
              </Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.length === 0 && (
            <Table.Tr>
              <Table.Td colSpan={columns.length}>
                <Text py="md">{empty}</Text>
              </Table.Td>
            </Table.Tr>
          )}
          {before > 0 && (
            <Table.Tr aria-hidden>
              <Table.Td colSpan={columns.length} style={{ height: before, padding: 0 }} />
            </Table.Tr>
          )}
          {items.map((item) => {
            const row = rows[item.index];
            return (
              <Table.Tr
                key={rowKey(row)}
                data-index={item.index}
                ref={virtualizer.measureElement}
                aria-rowindex={item.index + 2}
                style={onRowClick ? { cursor: 'pointer' } : undefined}
                onClick={
                  onRowClick &&
                  ((event) => {
                    // Links, buttons and menus in the row do their own thing.
                    if ((event.target as HTMLElement).closest('a, button, input, [role="menu"]')) return;
                    onRowClick(row);
                  })
                }
              >
                {columns.map((column) => (
                  <Table.Td key={column.key}>{column.cell(row)}</Table.Td>
                ))}
              </Table.Tr>
            );
          })}
          {after > 0 && (
            <Table.Tr aria-hidden>
              <Table.Td colSpan={columns.length} style={{ height: after, padding: 0 }} />
            </Table.Tr>
          )}
        </Table.Tbody>
      </Table>
    </div>
  );
}
