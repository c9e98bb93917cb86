import { Alert, Anchor, Button, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { Link, Navigate, useNavigate, useSearchParams } from 'react-router-dom';
import { ApiError } from '../../api/client';
import { useMe, useRegister } from '../../api/queries/session';
import { AuthCard } from './AuthCard';

export function RegisterPage() {
  const [params] = useSearchParams();
  const me = useMe();
  const register = useRegister();
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [inviteCode, setInviteCode] = useState(params.get('code') ?? '');

  if (me.data && !register.isPending && !register.isSuccess) return <Navigate to="/" replace />;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    register.mutate(
      { email, password, invite_code: inviteCode, username: username.trim() || undefined },
      { onSuccess: () => navigate('/workloads', { replace: true }) },
    );
  };
  const error = register.error;
  const message = error instanceof ApiError ? error.detail || error.title : error ? String(error) : null;

  return (
    <AuthCard title="Create an account">
      <form onSubmit={submit} aria-label="Create an account">
        <Stack>
          {message && (
            <Alert color="red" role="alert" data-testid="register-error">
              {message}
            </Alert>
          )}
          <TextInput
            label="Invite code"
            required
            value={inviteCode}
            onChange={(e) => setInviteCode(e.currentTarget.value)}
          />
          <TextInput
            label="Email"
            type="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
          />
          <TextInput
            label="Username (optional)"
            autoComplete="nickname"
            value={username}
            onChange={(e) => setUsername(e.currentTarget.value)}
          />
          <PasswordInput
            label="Password"
            description="At least 8 characters"
            autoComplete="new-password"
            required
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
          />
          <Button type="submit" loading={register.isPending} fullWidth>
            Create account
          </Button>
          <Text size="sm">
            Already have an account?{' '}
            <Anchor component={Link} to="/login">
              Log in
            </Anchor>
          </Text>
        </Stack>
      </form>
    </AuthCard>
  );
}
