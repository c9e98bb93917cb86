import { Anchor, Group, Text } from '@mantine/core';
import type { Workload } from '../../api/types';

/** A workload's ports: container→host, a link where the server gave a URL, and the
 * port's stable route (/u/<user>/<workload>/<port>/ through gpuyard's nginx) while
 * per-user routing publishes it. */
export function WorkloadPorts({ workload }: { workload: Pick<Workload, 'ports'> }) {
  if (workload.ports.length === 0) return <Text span size="sm">—</Text>;
  return (
    <Group gap={6}>
      {workload.ports.map((port) => {
        const text = port.host_port ? `${port.container_port}→${port.host_port}` : `${port.container_port}`;
        const direct = port.url ? (
          <Anchor href={port.url} target="_blank" rel="noreferrer" size="sm">
            {text}
          </Anchor>
        ) : (
          <Text span size="sm">
            {text}
          </Text>
        );
        return (
          <Group key={port.container_port} gap={4}>
            {direct}
            {port.route_url ? (
              <Anchor
                href={port.route_url}
                target="_blank"
                rel="noreferrer"
                size="sm"
                title={port.route_url}
                aria-label={`route of port ${port.container_port}`}
              >
                (route)
              </Anchor>
            ) : null}
          </Group>
        );
      })}
    </Group>
  );
}
