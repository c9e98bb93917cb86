import { Alert, Anchor, Button, PasswordInput, Stack, Text, TextInput } from '@mantine/core';
import { useEffect, useState, type FormEvent } from 'react';
import { Link, Navigate, useNavigate, useSearchParams } from 'react-router-dom';
import { ApiError } from '../../api/client';
import { useLogin, useMe } from '../../api/queries/session';
import { leavesTheApp, safeNext } from '../../auth/guards';
import { AuthCard } from './AuthCard';

export function LoginPage() {
  const [params] = useSearchParams();
  const next = safeNext(params.get('next'));
  const me = useMe();
  const login = useLogin();
  const navigate = useNavigate();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');

  const goOn = () => {
    if (leavesTheApp(next)) window.location.replace(next);
    else navigate(next, { replace: true });
  };

  if (me.data && !login.isPending) {
    return leavesTheApp(next) ? <LeaveForServer to={next} /> : <Navigate to={next} replace />;
  }

  const submit = (event: FormEvent) => {
    event.preventDefault();
    login.mutate({ email, password }, { onSuccess: goOn });
  };
  const error = login.error;
  const message =
    error instanceof ApiError
      ? error.status === 401
        ? 'Wrong email or password.'
        : error.detail || error.title
      : error
        ? 'The server could not be reached.'
        : null;

  return (
    <AuthCard title="Log in">
      <form onSubmit={submit} aria-label="Log in">
        <Stack>
          {message && (
            <Alert color="red" role="alert" data-testid="login-error">
              {message}
            </Alert>
          )}
          <TextInput
            label="Email"
            type="email"
            autoComplete="username"
            required
            autoFocus
            value={email}
            onChange={(e) => setEmail(e.currentTarget.value)}
          />
          <PasswordInput
            label="Password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
          />
          <Button type="submit" loading={login.isPending} fullWidth>
            Log in
          </Button>
          <Text size="sm">
            Have an invite code?{' '}
            <Anchor component={Link} to="/register">
              Create an account
            </Anchor>
          </Text>
        </Stack>
      </form>
    </AuthCard>
  );
}

/** Already logged in, going on to a server page (the routing login): a full page load,
 * which the router cannot do. */
function LeaveForServer({ to }: { to: string }) {
  useEffect(() => window.location.replace(to), [to]);
  return null;
}
