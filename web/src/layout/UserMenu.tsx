import { Avatar, Button, Menu, Text } from '@mantine/core';
import { IconChevronDown, IconLogout, IconUser } from '@tabler/icons-react';
import { useNavigate } from 'react-router-dom';
import { useLogout, useMe } from '../api/queries/session';

export function UserMenu() {
  const me = useMe();
  const logout = useLogout();
  const navigate = useNavigate();
  const user = me.data;
  if (!user) return null;
  const name = user.username ?? user.email;
  return (
    <Menu position="bottom-end" withinPortal>
      <Menu.Target>
        <Button
          variant="default"
          leftSection={
            <Avatar size="sm" radius="xl" color="blue" aria-hidden>
              <IconUser size={16} />
            </Avatar>
          }
          rightSection={<IconChevronDown size={14} aria-hidden />}
          data-testid="user-menu"
        >
          <Text size="sm" fw={500} span>
            {name}
          </Text>
        </Button>
      </Menu.Target>
      <Menu.Dropdown>
        <Menu.Label>
          {user.email} · {user.role}
        </Menu.Label>
        <Menu.Item
          leftSection={<IconLogout size={14} />}
          onClick={() => logout.mutate(undefined, { onSettled: () => navigate('/login') })}
        >
          Log out
        </Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}
