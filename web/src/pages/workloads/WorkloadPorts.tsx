import { Anchor, Group, Text } from '@mantine/core';
import type { Workload } from '../../api/types';

/** A workload's ports: container→host, a link where the server gave a URL. */
export function WorkloadPorts({ workload }: { workload: Pick<Workload, 'ports'> }) {
  if (workload.ports.length === 0) return <Text span size="sm">—</Text>;
  return (
    <Group gap={6}>
      {workload.ports.map((port) => {
        const text = port.host_port ? `${port.container_port}→${port.host_port}` : `${port.container_port}`;
        return port.url ? (
          <Anchor key={port.container_port} href={port.url} target="_blank" rel="noreferrer" size="sm">
            {text}
          </Anchor>
        ) : (
          <Text key={port.container_port} span size="sm">
            {text}
          </Text>
        );
      })}
    </Group>
  );
}
